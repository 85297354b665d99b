// What users allowed clients that are not first-party to ask for, remembered
// per user and client: a client asking again for no more than that is not
// asked about again; one asking for more is. Consent given to one client is
// never another's (the key is the pair).
import type { PrismaClient } from '../generated/prisma/client.js'
import type { SessionsRepository } from './sessions.js'

export function createConsentsRepository(prisma: PrismaClient, sessions: SessionsRepository) {
  return {
    /** The apps the user allowed, newest first, with what each may ask for. */
    async list(userId: string) {
      const rows = await prisma.consent.findMany({
        where: { userId },
        orderBy: [{ updatedAt: 'desc' }, { clientId: 'asc' }],
        select: { clientId: true, scopes: true, createdAt: true, updatedAt: true, client: { select: { name: true } } }
      })
      return rows.map((row) => ({
        client_id: row.clientId,
        client_name: row.client.name,
        scopes: row.scopes,
        granted_at: row.createdAt.toISOString(),
        updated_at: row.updatedAt.toISOString()
      }))
    },

    /**
     * Withdraws the user's consent to a client, in one transaction: the
     * consent goes, the sessions the user started through that client end (their
     * tokens revoked on every instance), and codes not yet exchanged die. False
     * when there was no consent.
     */
    async withdraw(userId: string, clientId: string): Promise<boolean> {
      return sessions.withRevocation(async (tx) => {
        const removed = await tx.consent.deleteMany({ where: { userId, clientId } })
        if (removed.count === 0) return { result: false, revoked: [] }
        await tx.authorizationCode.deleteMany({ where: { userId, clientId, usedAt: null } })
        return { result: true, revoked: await sessions.endUserClientSessions(tx, userId, clientId, 'consent_withdrawn') }
      })
    },

    /** Whether the user already allowed the client every one of `scopes`. */
    async covers(userId: string, clientId: string, scopes: string[]): Promise<boolean> {
      const consent = await prisma.consent.findUnique({ where: { userId_clientId: { userId, clientId } }, select: { scopes: true } })
      return consent !== null && scopes.every((scope) => consent.scopes.includes(scope))
    },

    /** Remembers that the user allowed the client `scopes` (added to what it allowed before). */
    async remember(userId: string, clientId: string, scopes: string[]) {
      await prisma.$executeRaw`
        INSERT INTO consents (user_id, client_id, scopes, created_at, updated_at)
        VALUES (${userId}::uuid, ${clientId}::uuid, ${scopes}::text[], now(), now())
        ON CONFLICT (user_id, client_id) DO UPDATE
          SET scopes = ARRAY(SELECT DISTINCT unnest(consents.scopes || EXCLUDED.scopes)), updated_at = now()`
    }
  }
}

export type ConsentsRepository = ReturnType<typeof createConsentsRepository>
