// Authorization codes (RFC 6749 §4.1.2): random, stored only as hashes, bound
// to the client, the redirect URI, the PKCE challenge, the nonce, the scopes
// and the account's security version; valid 60 seconds and once. Redeeming
// one starts the session in the same transaction that spends the code, with
// the code row locked: of two exchanges of one code, the second waits, then
// sees the code spent and ends the session the first one started (RFC 6749
// §4.1.2, OAuth 2.1 §4.1.3): a code used twice was stolen.
import type { PrismaClient } from '../generated/prisma/client.js'
import { AUTHORIZATION_CODE_PREFIX, hashOpaqueToken, newOpaqueToken } from '../lib/opaque-tokens.js'
import { verifierMatches } from '../oauth/pkce.js'
import type { AuditSource } from './audit.js'
import type { SessionsRepository } from './sessions.js'

export const CODE_LIFETIME_MS = 60_000

export interface CodeGrant {
  clientId: string
  userId: string
  redirectUri: string
  codeChallenge: string
  scope: string
  nonce?: string
  /** The account's security version when the user signed in. */
  securityVersion: number
  amr: string[]
  authTime: Date
}

export type RedeemResult =
  | { outcome: 'redeemed'; sessionId: string; refreshToken: string; grant: CodeGrant }
  /** Unknown, expired, for another client or redirect URI, or a wrong verifier: nothing happens. */
  | { outcome: 'invalid' }
  /** Spent already: the session of its first use was ended. */
  | { outcome: 'replayed'; userId: string; sessionId?: string }
  /** The account changed (or is inactive) since the sign-in: no session. */
  | { outcome: 'account_changed'; userId: string }

interface CodeRow {
  id: string
  client_id: string
  user_id: string
  redirect_uri: string
  code_challenge: string
  scope: string
  nonce: string | null
  security_version: number
  amr: string[]
  auth_time: Date
  expires_at: Date
  used_at: Date | null
  session_id: string | null
}

export function createAuthorizationCodesRepository(prisma: PrismaClient, sessions: SessionsRepository) {
  return {
    /** Issues a code for `grant`; answers the code (shown once, in the redirect). */
    async issue(grant: CodeGrant): Promise<string> {
      const code = newOpaqueToken(AUTHORIZATION_CODE_PREFIX)
      await prisma.authorizationCode.create({
        data: { ...grant, nonce: grant.nonce ?? null, codeHash: code.hash, expiresAt: new Date(Date.now() + CODE_LIFETIME_MS) },
        select: { id: true }
      })
      return code.token
    },

    /**
     * Exchanges a code: checks it against the client, redirect URI and PKCE
     * verifier, spends it, and starts its session (version-checked) — all in
     * one transaction on the locked code row.
     */
    async redeem(input: { code: string; clientId: string; redirectUri: string; codeVerifier: string }, source: AuditSource): Promise<RedeemResult> {
      return sessions.withRevocation<RedeemResult>(async (tx) => {
        const [row] = await tx.$queryRaw<CodeRow[]>`
          SELECT id, client_id, user_id, redirect_uri, code_challenge, scope, nonce, security_version, amr, auth_time,
                 expires_at, used_at, session_id
          FROM authorization_codes WHERE code_hash = ${hashOpaqueToken(input.code)}
          FOR UPDATE`
        if (!row) return { result: { outcome: 'invalid' }, revoked: [] }
        if (row.used_at) {
          const revoked = row.session_id ? await sessions.endSessionIn(tx, row.session_id, 'code_replayed') : []
          return { result: { outcome: 'replayed', userId: row.user_id, sessionId: row.session_id ?? undefined }, revoked }
        }
        // Checked before the code is spent: a wrong guess at the verifier or redirect URI does not burn it.
        const valid =
          row.expires_at > new Date() &&
          row.client_id === input.clientId &&
          row.redirect_uri === input.redirectUri &&
          verifierMatches(input.codeVerifier, row.code_challenge)
        if (!valid) return { result: { outcome: 'invalid' }, revoked: [] }

        const grant: CodeGrant = {
          clientId: row.client_id,
          userId: row.user_id,
          redirectUri: row.redirect_uri,
          codeChallenge: row.code_challenge,
          scope: row.scope,
          nonce: row.nonce ?? undefined,
          securityVersion: row.security_version,
          amr: row.amr,
          authTime: row.auth_time
        }
        const session = await sessions.start(
          { userId: row.user_id, securityVersion: row.security_version, clientId: row.client_id, scope: row.scope, amr: row.amr, auditKind: 'authorization_code.exchanged' },
          source,
          tx
        )
        // Spent either way: a code whose account changed is not tried again.
        await tx.authorizationCode.update({ where: { id: row.id }, data: { usedAt: new Date(), sessionId: session?.sessionId ?? null } })
        if (!session) return { result: { outcome: 'account_changed', userId: row.user_id }, revoked: [] }
        return { result: { outcome: 'redeemed', sessionId: session.sessionId, refreshToken: session.refreshToken, grant }, revoked: [] }
      })
    },

    /** Deletes codes that expired before `before` (spent ones too: a replay after that is an unknown code). */
    async prune(before: Date) {
      const { count } = await prisma.authorizationCode.deleteMany({ where: { expiresAt: { lt: before } } })
      return count
    }
  }
}

export type AuthorizationCodesRepository = ReturnType<typeof createAuthorizationCodesRepository>
