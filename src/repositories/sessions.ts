// Sessions and their rotating refresh tokens. Every write that ends sessions
// runs in one transaction with their revocation, so an ended session's access
// tokens are refused on every instance as soon as it commits.
import { randomUUID } from 'node:crypto'
import type { Config } from '../config.js'
import type { PrismaClient, Prisma } from '../generated/prisma/client.js'
import { hashOpaqueToken, newOpaqueToken, REFRESH_TOKEN_PREFIX } from '../lib/opaque-tokens.js'
import type { RevocationStore } from '../plugins/app/revocations.js'
import { grantScopes, parseScope } from '../lib/scopes.js'
import type { AuditKind, AuditSource } from './audit.js'

export type EndReason =
  | 'logout'
  | 'revoked'
  | 'password_changed'
  | 'deactivated'
  | 'role_changed'
  | 'account_deleted'
  | 'refresh_token_reuse'
  | 'expired'

export type RotateResult =
  | { outcome: 'rotated'; sessionId: string; userId: string; scope: string; refreshToken: string }
  | { outcome: 'unknown' }
  /** A spent token presented again within the grace window, or a token of an already ended session. */
  | { outcome: 'spent'; sessionId: string; userId: string }
  /** A spent token presented again: the session was ended as stolen. */
  | { outcome: 'reused'; sessionId: string; userId: string }
  | { outcome: 'expired' | 'inactive'; sessionId: string; userId: string }

type Transaction = Prisma.TransactionClient

export function createSessionsRepository(prisma: PrismaClient, revocations: RevocationStore, config: Config) {
  /** Runs `work` in a transaction that also revokes the sessions it returns. */
  async function withRevocation<T>(work: (tx: Transaction) => Promise<{ result: T; revoked: string[] }>): Promise<T> {
    const { result, revoked, expiresAt } = await prisma.$transaction(async (tx) => {
      const outcome = await work(tx)
      const expiresAt = await revocations.revokeInTransaction(tx, outcome.revoked)
      return { ...outcome, expiresAt }
    })
    revocations.remember(revoked, expiresAt)
    return result
  }

  /** Ends the user's live sessions (all, or all but one); returns their ids. */
  async function endUserSessions(tx: Transaction, userId: string, reason: EndReason, exceptSessionId?: string) {
    const live = await tx.session.findMany({
      where: { userId, endedAt: null, ...(exceptSessionId ? { id: { not: exceptSessionId } } : {}) },
      select: { id: true }
    })
    const ids = live.map((session) => session.id)
    if (ids.length > 0) {
      await tx.session.updateMany({ where: { id: { in: ids } }, data: { endedAt: new Date(), endReason: reason } })
    }
    return ids
  }

  async function endSession(tx: Transaction, sessionId: string, reason: EndReason) {
    await tx.session.updateMany({ where: { id: sessionId, endedAt: null }, data: { endedAt: new Date(), endReason: reason } })
    return [sessionId]
  }

  return {
    withRevocation,
    endUserSessions,

    /**
     * Starts a session for a password login with its first refresh token, and
     * records the login's audit event (`login.success`) with them; returns the
     * session's id and refresh token. The three rows are written by one
     * statement, so they are written together or not at all.
     *
     * Raw SQL because it pays: Prisma writes the same rows in six round trips
     * (BEGIN, two INSERTs, a SELECT of the session it just wrote, COMMIT, then
     * the audit INSERT), and on a small machine each round trip's CPU (socket
     * writes in Node, statement handling in PostgreSQL) comes out of the
     * password hashing that bounds the login rate. Ids and timestamps are
     * made here, as Prisma's `@default(uuid())` and `@default(now())` would
     * make them (the service's clock, like every other session timestamp).
     */
    async start(userId: string, scope: string, source: AuditSource) {
      const sessionId = randomUUID()
      const refresh = newOpaqueToken(REFRESH_TOKEN_PREFIX)
      const now = new Date()
      const expiresAt = new Date(now.getTime() + config.SESSION_MAX_AGE * 1000)
      const kind: AuditKind = 'login.success'
      await prisma.$executeRaw`
        WITH session AS (
          INSERT INTO sessions (id, user_id, scope, created_at, last_used_at, expires_at)
          VALUES (${sessionId}::uuid, ${userId}::uuid, ${scope}, ${now}::timestamptz, ${now}::timestamptz, ${expiresAt}::timestamptz)
          RETURNING id
        ), token AS (
          INSERT INTO refresh_tokens (id, session_id, token_hash, created_at)
          SELECT ${randomUUID()}::uuid, id, ${refresh.hash}, ${now}::timestamptz FROM session
        )
        INSERT INTO audit_events (id, kind, user_id, session_id, ip, user_agent, created_at)
        SELECT ${randomUUID()}::uuid, ${kind}, ${userId}::uuid, id, ${source.ip}, ${source.userAgent}, ${now}::timestamptz FROM session`
      return { sessionId, refreshToken: refresh.token }
    },

    /**
     * Spends a refresh token and mints its successor. Exactly one of any number
     * of concurrent calls with the same token wins (the conditional UPDATE
     * takes the row lock); the others see a spent token. A spent token
     * presented after the grace window ends the whole session.
     */
    async rotate(token: string, narrowTo: string[] = []): Promise<RotateResult> {
      const tokenHash = hashOpaqueToken(token)
      return withRevocation<RotateResult>(async (tx) => {
        const now = new Date()
        const spent = await tx.refreshToken.updateMany({ where: { tokenHash, spentAt: null }, data: { spentAt: now } })
        const row = await tx.refreshToken.findUnique({
          where: { tokenHash },
          select: {
            spentAt: true,
            session: {
              select: {
                id: true,
                userId: true,
                scope: true,
                expiresAt: true,
                lastUsedAt: true,
                endedAt: true,
                user: { select: { isActive: true } }
              }
            }
          }
        })
        if (!row) return { result: { outcome: 'unknown' }, revoked: [] }
        const { session } = row
        const ids = { sessionId: session.id, userId: session.userId }

        if (spent.count === 0) {
          const sinceSpent = now.getTime() - (row.spentAt?.getTime() ?? 0)
          if (session.endedAt || sinceSpent < config.REFRESH_REUSE_GRACE * 1000) {
            return { result: { outcome: 'spent', ...ids }, revoked: [] }
          }
          return {
            result: { outcome: 'reused', ...ids },
            revoked: await endSession(tx, session.id, 'refresh_token_reuse')
          }
        }
        if (session.endedAt) return { result: { outcome: 'spent', ...ids }, revoked: [] }
        const idleSince = now.getTime() - session.lastUsedAt.getTime()
        if (session.expiresAt <= now || idleSince > config.SESSION_IDLE_TTL * 1000) {
          return { result: { outcome: 'expired', ...ids }, revoked: await endSession(tx, session.id, 'expired') }
        }
        if (!session.user.isActive) {
          return { result: { outcome: 'inactive', ...ids }, revoked: await endSession(tx, session.id, 'deactivated') }
        }
        // Throwing here rolls the spend back: a refused scope costs the client nothing.
        const scope = narrowTo.length > 0 ? grantScopes(narrowTo.join(' '), parseScope(session.scope)) : session.scope
        const next = newOpaqueToken(REFRESH_TOKEN_PREFIX)
        await tx.refreshToken.create({ data: { sessionId: session.id, tokenHash: next.hash } })
        await tx.session.update({ where: { id: session.id }, data: { lastUsedAt: now } })
        return {
          result: { outcome: 'rotated', ...ids, scope, refreshToken: next.token },
          revoked: []
        }
      })
    },

    /** Ends one session of a user (logout, or revocation by its refresh token). */
    async end(sessionId: string, reason: EndReason) {
      return withRevocation(async (tx) => ({ result: undefined, revoked: await endSession(tx, sessionId, reason) }))
    },

    /** Revokes one access token by its `jti` (service clients have no session to end). */
    async revokeToken(tokenId: string) {
      return withRevocation(async () => ({ result: undefined, revoked: [tokenId] }))
    },

    /**
     * Deletes sessions (with their refresh tokens) that ended or expired before
     * `before`. Reuse detection needs a session's spent tokens only while it lives.
     */
    async prune(before: Date) {
      const { count } = await prisma.session.deleteMany({
        where: { OR: [{ endedAt: { lt: before } }, { expiresAt: { lt: before } }] }
      })
      return count
    },

    /** The session a refresh token belongs to, if it is one this service issued. */
    async findByRefreshToken(token: string) {
      const row = await prisma.refreshToken.findUnique({
        where: { tokenHash: hashOpaqueToken(token) },
        select: { session: { select: { id: true, userId: true } } }
      })
      return row?.session
    }
  }
}

export type SessionsRepository = ReturnType<typeof createSessionsRepository>
