// What users allowed clients that are not first-party to ask for, remembered
// per user and client: a client asking again for no more than that is not
// asked about again; one asking for more is. Consent given to one client is
// never another's (the key is the pair).
import type { PrismaClient } from '../generated/prisma/client.js'

export function createConsentsRepository(prisma: PrismaClient) {
  return {
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
