// Sessions and their rotating refresh tokens. Every write that ends sessions
// runs in one transaction with their revocation, so an ended session's access
// tokens are refused on every instance as soon as it commits.
//
// A session lives only while its account is at the security version the
// session began with (users.security_version; see users.ts): it is created by
// one statement that checks that version on the locked account row, and
// renewed by a transaction that locks the account row and checks it again. So
// a login or refresh that started before a password change, deactivation,
// role change or deletion never produces a session that outlives the change.
//
// Refresh tokens are derived, not drawn: the token of generation n of a
// session is an HMAC (APP_SECRET) of the session, n and the session's random
// salt, stored only as its hash. That lets a client that lost the answer of a
// refresh retry it within REFRESH_REUSE_GRACE and get the same successor again
// (recomputed, never stored in the clear), while any older token presented
// again still ends the session as stolen.
import { randomUUID } from 'node:crypto'
import type { Config } from '../config.js'
import { Prisma, type PrismaClient } from '../generated/prisma/client.js'
import type { AppSecret } from '../lib/app-secret.js'
import { hashOpaqueToken, REFRESH_TOKEN_PREFIX } from '../lib/opaque-tokens.js'
import type { RevocationStore } from '../plugins/app/revocations.js'
import { grantableForRole, grantScopes, intersectScopes, parseScope } from '../lib/scopes.js'
import type { AuditKind, AuditSource } from './audit.js'

export type EndReason =
  | 'logout'
  | 'revoked'
  | 'password_changed'
  | 'password_reset'
  | 'email_changed'
  | 'deactivated'
  | 'role_changed'
  | 'account_deleted'
  | 'security_changed'
  | 'client_deleted'
  | 'consent_withdrawn'
  | 'code_replayed'
  | 'mfa_enabled'
  | 'mfa_disabled'
  | 'mfa_changed'
  | 'mfa_reset'
  | 'refresh_token_reuse'
  | 'expired'

export type RotateResult =
  | { outcome: 'rotated'; sessionId: string; userId: string; scope: string; amr: string[]; refreshToken: string; retried: boolean }
  | { outcome: 'unknown' }
  /** The session ended already, or a retry that can no longer be answered: refused, nothing changes. */
  | { outcome: 'spent'; sessionId: string; userId: string }
  /** The token belongs to another client: refused, nothing spent. */
  | { outcome: 'wrong_client'; sessionId: string; userId: string }
  /** A spent token presented again: the session was ended as stolen. */
  | { outcome: 'reused'; sessionId: string; userId: string }
  /** The session expired, or its account changed (deactivated, password, role...): the session was ended. */
  | { outcome: 'expired' | 'inactive'; sessionId: string; userId: string }

/** What a session begins with: whose, for which client, with what, at which account version, signed in how. */
export interface NewSession {
  userId: string
  /** The account's security version read before the login's slow work. */
  securityVersion: number
  clientId: string
  scope: string
  /** The methods the user signed in with (RFC 8176: `pwd`, `otp`). */
  amr: string[]
  /** The audit event written with it: `login.success` unless said otherwise. */
  auditKind?: AuditKind
}

/** The password alone; with a second factor (a TOTP or a recovery code, both one-time passwords). */
export const AMR_PASSWORD = ['pwd']
export const AMR_PASSWORD_AND_OTP = ['pwd', 'otp']

type Transaction = Prisma.TransactionClient

interface RotationRow {
  token_id: string
  generation: number
  spent_at: Date | null
  session_id: string
  user_id: string
  client_id: string
  scope: string
  amr: string[]
  session_version: number
  salt: string
  refresh_generation: number
  expires_at: Date
  last_used_at: Date
  ended_at: Date | null
  role: 'user' | 'admin'
  is_active: boolean
  user_version: number
}

export function createSessionsRepository(prisma: PrismaClient, revocations: RevocationStore, config: Config, secret: AppSecret) {
  /** The refresh token of generation `generation` of a session. */
  const refreshToken = (sessionId: string, generation: number, salt: string) =>
    REFRESH_TOKEN_PREFIX + secret.mac('refresh-token', sessionId, String(generation), salt)

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

  /** Ends the live sessions that `which` selects; returns their ids (for revocation). */
  async function endWhere(tx: Transaction, which: Prisma.Sql, reason: EndReason) {
    const ended = await tx.$queryRaw<Array<{ id: string }>>`
      UPDATE sessions SET ended_at = ${new Date()}::timestamptz, end_reason = ${reason}
      WHERE ${which} AND ended_at IS NULL
      RETURNING id`
    return ended.map((session) => session.id)
  }

  /** Ends the user's live sessions (all, or all but one). */
  const endUserSessions = (tx: Transaction, userId: string, reason: EndReason, exceptSessionId?: string) =>
    endWhere(tx, Prisma.sql`user_id = ${userId}::uuid AND id IS DISTINCT FROM ${exceptSessionId ?? null}::uuid`, reason)

  /** Ends the live sessions issued to a client (it is being deleted). */
  const endClientSessions = (tx: Transaction, clientId: string, reason: EndReason) => endWhere(tx, Prisma.sql`client_id = ${clientId}`, reason)

  /** Ends the sessions one user started through one client (the user withdrew its consent). */
  const endUserClientSessions = (tx: Transaction, userId: string, clientId: string, reason: EndReason) =>
    endWhere(tx, Prisma.sql`user_id = ${userId}::uuid AND client_id = ${clientId}`, reason)

  async function endSession(tx: Transaction, sessionId: string, reason: EndReason) {
    await tx.session.updateMany({ where: { id: sessionId, endedAt: null }, data: { endedAt: new Date(), endReason: reason } })
    return [sessionId]
  }

  return {
    withRevocation,
    endUserSessions,
    endClientSessions,
    endUserClientSessions,
    /** Ends one session inside a running transaction; answers its id for revocation. */
    endSessionIn: endSession,

    /**
     * Starts a session with its first refresh token and records the login's
     * audit event (`login.success`) — if, and only if, the account is still
     * active and at `securityVersion`. One statement: the account row is read
     * `FOR SHARE`, so a concurrent change of its security state either commits
     * first (and this statement sees the new version and writes nothing) or
     * waits for this one (and then ends the new session with the others).
     * Answers undefined when the account moved on; the caller decides again.
     * `db`: a transaction to write in (an authorization code's exchange).
     *
     * Raw SQL because it pays: Prisma writes the same rows in six round trips
     * (BEGIN, two INSERTs, a SELECT of the session it just wrote, COMMIT, then
     * the audit INSERT), and on a small machine each round trip's CPU (socket
     * writes in Node, statement handling in PostgreSQL) comes out of the
     * password hashing that bounds the login rate. Ids and timestamps are
     * made here, as Prisma's `@default(uuid())` and `@default(now())` would
     * make them (the service's clock, like every other session timestamp).
     *
     * `db`: a transaction to run in, when the start must stand or fall with
     * other writes (a second factor consumed for it).
     */
    async start(session: NewSession, source: AuditSource, db: Pick<Transaction, '$executeRaw'> = prisma) {
      const { userId, securityVersion, clientId, scope, amr } = session
      const sessionId = randomUUID()
      const salt = randomUUID()
      const token = refreshToken(sessionId, 0, salt)
      const now = new Date()
      const expiresAt = new Date(now.getTime() + config.SESSION_MAX_AGE * 1000)
      const kind: AuditKind = session.auditKind ?? 'login.success'
      const written = await db.$executeRaw`
        WITH account AS (
          SELECT id FROM users
          WHERE id = ${userId}::uuid AND security_version = ${securityVersion} AND is_active
          FOR SHARE
        ), session AS (
          INSERT INTO sessions (id, user_id, client_id, security_version, refresh_salt, scope, amr, created_at, last_used_at, expires_at)
          SELECT ${sessionId}::uuid, id, ${clientId}, ${securityVersion}, ${salt}::uuid, ${scope}, ${amr}::text[],
                 ${now}::timestamptz, ${now}::timestamptz, ${expiresAt}::timestamptz
          FROM account
          RETURNING id
        ), token AS (
          INSERT INTO refresh_tokens (id, session_id, token_hash, generation, created_at)
          SELECT ${randomUUID()}::uuid, id, ${hashOpaqueToken(token)}, 0, ${now}::timestamptz FROM session
        )
        INSERT INTO audit_events (id, kind, user_id, client_id, session_id, ip, user_agent, created_at)
        SELECT ${randomUUID()}::uuid, ${kind}, ${userId}::uuid, ${clientId === 'public' ? null : clientId}::uuid, id,
               ${source.ip}, ${source.userAgent}, ${now}::timestamptz
        FROM session`
      return written === 1 ? { sessionId, refreshToken: token } : undefined
    },

    /**
     * Spends a refresh token and hands out its successor, for the client the
     * session was issued to. The session and account rows are locked, so
     * concurrent refreshes of one session take turns and a concurrent change of
     * the account waits or is seen. The scopes are the session's, within what
     * the account's role allows now, narrowed to `narrowTo` when given.
     *
     * A spent token presented again is theft — the whole session ends — unless
     * it is the latest one spent, within REFRESH_REUSE_GRACE, and its successor
     * is still unused: then the client is retrying a refresh whose answer it
     * lost, and gets the same successor again.
     */
    async rotate(input: { token: string; clientId: string; narrowTo?: string[] }): Promise<RotateResult> {
      const tokenHash = hashOpaqueToken(input.token)
      return withRevocation<RotateResult>(async (tx) => {
        const now = new Date()
        const [row] = await tx.$queryRaw<RotationRow[]>`
          SELECT t.id AS token_id, t.generation, t.spent_at,
                 s.id AS session_id, s.user_id, s.client_id, s.scope, s.amr, s.security_version AS session_version,
                 s.refresh_salt::text AS salt, s.refresh_generation, s.expires_at, s.last_used_at, s.ended_at,
                 u.role::text AS role, u.is_active, u.security_version AS user_version
          FROM refresh_tokens t
          JOIN sessions s ON s.id = t.session_id
          JOIN users u ON u.id = s.user_id
          WHERE t.token_hash = ${tokenHash}
          FOR UPDATE OF t, s FOR SHARE OF u`
        if (!row) return { result: { outcome: 'unknown' }, revoked: [] }
        const ids = { sessionId: row.session_id, userId: row.user_id }
        const end = async (outcome: 'reused' | 'expired' | 'inactive', reason: EndReason) => ({
          result: { outcome, ...ids },
          revoked: await endSession(tx, row.session_id, reason)
        })

        if (row.ended_at) return { result: { outcome: 'spent', ...ids }, revoked: [] }
        // Checked before anything is spent: another client's attempt costs the session nothing.
        if (row.client_id !== input.clientId) return { result: { outcome: 'wrong_client', ...ids }, revoked: [] }
        if (!row.is_active) return end('inactive', 'deactivated')
        if (row.session_version !== row.user_version) return end('inactive', 'security_changed')
        const idleMs = now.getTime() - row.last_used_at.getTime()
        if (row.expires_at <= now || idleMs > config.SESSION_IDLE_TTL * 1000) return end('expired', 'expired')

        // The role as it is now bounds the scopes, whatever the session was granted.
        // Throwing here (invalid_scope) rolls everything back: a refused scope spends nothing.
        const current = intersectScopes(row.scope, grantableForRole(row.role))
        const scope = input.narrowTo?.length ? grantScopes(input.narrowTo.join(' '), parseScope(current)) : current
        const touch = () => tx.session.update({ where: { id: row.session_id }, data: { lastUsedAt: now } })

        if (row.spent_at === null) {
          const generation = row.refresh_generation + 1
          const next = refreshToken(row.session_id, generation, row.salt)
          await tx.refreshToken.update({ where: { id: row.token_id }, data: { spentAt: now } })
          await tx.refreshToken.create({ data: { sessionId: row.session_id, tokenHash: hashOpaqueToken(next), generation } })
          await tx.session.update({ where: { id: row.session_id }, data: { lastUsedAt: now, refreshGeneration: generation } })
          return { result: { outcome: 'rotated', ...ids, scope, amr: row.amr, refreshToken: next, retried: false }, revoked: [] }
        }

        const latest = row.generation === row.refresh_generation - 1
        const withinGrace = now.getTime() - row.spent_at.getTime() < config.REFRESH_REUSE_GRACE * 1000
        if (!latest || !withinGrace) return end('reused', 'refresh_token_reuse')
        const successor = refreshToken(row.session_id, row.refresh_generation, row.salt)
        const live = await tx.refreshToken.findUnique({ where: { tokenHash: hashOpaqueToken(successor) }, select: { spentAt: true } })
        // Not found: APP_SECRET changed since the successor was made, so it cannot be given again.
        if (!live || live.spentAt !== null) return { result: { outcome: 'spent', ...ids }, revoked: [] }
        await touch()
        return { result: { outcome: 'rotated', ...ids, scope, amr: row.amr, refreshToken: successor, retried: true }, revoked: [] }
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

    /**
     * What a refresh token is, if it is live: unspent, its session not ended
     * or expired, its account active and unchanged (for introspection).
     */
    async describeRefreshToken(token: string) {
      const [row] = await prisma.$queryRaw<Array<{ client_id: string; scope: string; user_id: string; expires_at: Date }>>`
        SELECT s.client_id, s.scope, s.user_id, s.expires_at
        FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id JOIN users u ON u.id = s.user_id
        WHERE t.token_hash = ${hashOpaqueToken(token)} AND t.spent_at IS NULL AND s.ended_at IS NULL
          AND s.expires_at > now() AND s.last_used_at > now() - make_interval(secs => ${config.SESSION_IDLE_TTL})
          AND u.is_active AND u.security_version = s.security_version`
      return row && { clientId: row.client_id, scope: row.scope, userId: row.user_id, expiresAt: row.expires_at }
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
