// A browser's sign-in at the authorization endpoint: the cookie holds a
// random token, the database its hash. Like a token session, it begins only
// while the account is active and at the security version read before the
// password was checked (one statement, the account row read FOR SHARE), and
// it counts only while the account is still at that version: a password
// change, deactivation, role or email change, or MFA change ends every
// browser sign-in of the account with nothing else to do.
import { randomUUID } from 'node:crypto'
import type { Prisma, PrismaClient } from '../generated/prisma/client.js'
import { BROWSER_SESSION_PREFIX, hashOpaqueToken, newOpaqueToken } from '../lib/opaque-tokens.js'

export interface BrowserSignIn {
  id: string
  userId: string
  securityVersion: number
  amr: string[]
  authTime: Date
}

export function createBrowserSessionsRepository(prisma: PrismaClient, lifetimeSeconds: number) {
  return {
    /**
     * Starts a sign-in if the account is still active and at `securityVersion`;
     * answers the cookie's token, or undefined. `db`: a transaction to run in
     * (a second factor consumed for it).
     */
    async start(
      input: { userId: string; securityVersion: number; amr: string[] },
      db: Pick<Prisma.TransactionClient, '$executeRaw'> = prisma
    ): Promise<string | undefined> {
      const token = newOpaqueToken(BROWSER_SESSION_PREFIX)
      const now = new Date()
      const written = await db.$executeRaw`
        WITH account AS (
          SELECT id FROM users WHERE id = ${input.userId}::uuid AND security_version = ${input.securityVersion} AND is_active FOR SHARE
        )
        INSERT INTO browser_sessions (id, token_hash, user_id, security_version, amr, auth_time, created_at, expires_at)
        SELECT ${randomUUID()}::uuid, ${token.hash}, id, ${input.securityVersion}, ${input.amr}::text[], ${now}::timestamptz,
               ${now}::timestamptz, ${new Date(now.getTime() + lifetimeSeconds * 1000)}::timestamptz
        FROM account`
      return written === 1 ? token.token : undefined
    },

    /** The live sign-in a cookie's token names, while its account is active and unchanged. */
    async find(token: string | undefined): Promise<BrowserSignIn | undefined> {
      if (!token?.startsWith(BROWSER_SESSION_PREFIX) || token.length > 100) return undefined
      const [row] = await prisma.$queryRaw<Array<{ id: string; user_id: string; security_version: number; amr: string[]; auth_time: Date }>>`
        SELECT b.id, b.user_id, b.security_version, b.amr, b.auth_time
        FROM browser_sessions b JOIN users u ON u.id = b.user_id
        WHERE b.token_hash = ${hashOpaqueToken(token)} AND b.ended_at IS NULL AND b.expires_at > now()
          AND u.is_active AND u.security_version = b.security_version`
      return row && { id: row.id, userId: row.user_id, securityVersion: row.security_version, amr: row.amr, authTime: row.auth_time }
    },

    /** Ends the sign-in a cookie's token names (signing out). */
    async end(token: string | undefined) {
      if (!token) return
      await prisma.browserSession.updateMany({ where: { tokenHash: hashOpaqueToken(token), endedAt: null }, data: { endedAt: new Date() } })
    },

    /** Deletes sign-ins that ended or expired before `before`. */
    async prune(before: Date) {
      const { count } = await prisma.browserSession.deleteMany({ where: { OR: [{ endedAt: { lt: before } }, { expiresAt: { lt: before } }] } })
      return count
    }
  }
}

export type BrowserSessionsRepository = ReturnType<typeof createBrowserSessionsRepository>
