// Service clients and their secret generations. A client's access tokens
// carry the id of the secret generation that minted them as `sid`, so
// rotating the secret or deleting the client revokes them like a session.
// Authentication reads a client through the client cache
// (plugins/app/client-cache.ts), which every change forgets.
import type { Prisma, PrismaClient } from '../generated/prisma/client.js'
import type { ClientCache } from '../plugins/app/client-cache.js'
import { notFound } from '../lib/errors.js'
import { CLIENT_SECRET_PREFIX, hashOpaqueToken, newOpaqueToken, sameHash } from '../lib/opaque-tokens.js'
import { pageIds, toPage } from './cursor.js'
import type { SessionsRepository } from './sessions.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
// Compared against when the client is unknown, so both paths do the same work.
const DUMMY_HASH = hashOpaqueToken('no such client')

interface ClientRow {
  id: string
  name: string
  scopes: string[]
  createdAt: Date
}

export const toClientDto = (client: ClientRow) => ({
  client_id: client.id,
  name: client.name,
  scopes: client.scopes,
  created_at: client.createdAt.toISOString()
})

const clientSelect = { id: true, name: true, scopes: true, createdAt: true } as const

/** What authenticating a client needs: its scopes and the hashes of its live secrets. */
const credentialsSelect = {
  id: true,
  scopes: true,
  secrets: { where: { revokedAt: null }, select: { id: true, secretHash: true } }
} satisfies Prisma.ClientSelect
export type ClientCredentials = Prisma.ClientGetPayload<{ select: typeof credentialsSelect }>

export function createClientsRepository(prisma: PrismaClient, sessions: SessionsRepository, cache: ClientCache) {
  return {
    async create(name: string, scopes: string[]) {
      const secret = newOpaqueToken(CLIENT_SECRET_PREFIX)
      const client = await prisma.client.create({
        data: { name, scopes, secrets: { create: { secretHash: secret.hash } } },
        select: clientSelect
      })
      return { ...toClientDto(client), client_secret: secret.token }
    },

    async list(query: { limit: number; cursor?: string }) {
      const ids = await pageIds(prisma, 'clients', query, 'asc')
      const rows = await prisma.client.findMany({ where: { id: { in: ids } }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], select: clientSelect })
      return toPage(rows, query.limit, toClientDto)
    },

    /** The oldest client of that name, if any (names are labels, not unique). */
    async findByName(name: string) {
      const client = await prisma.client.findFirst({ where: { name }, orderBy: { createdAt: 'asc' }, select: clientSelect })
      return client ? toClientDto(client) : undefined
    },

    /**
     * Replaces the secret; the old one and every token minted with it stop
     * working. `authorize` sees the client first and may refuse.
     */
    async rotateSecret(id: string, authorize: (client: { scopes: string[] }) => void) {
      const secret = newOpaqueToken(CLIENT_SECRET_PREFIX)
      const rotated = await sessions.withRevocation(async (tx) => {
        const [client] = await tx.$queryRaw<Array<{ id: string; name: string; scopes: string[]; createdAt: Date }>>`
          SELECT id, name, scopes, created_at AS "createdAt" FROM clients WHERE id = ${id}::uuid FOR UPDATE`
        if (!client) throw notFound('Client')
        authorize(client)
        const old = await tx.clientSecret.findMany({ where: { clientId: id, revokedAt: null }, select: { id: true } })
        await tx.clientSecret.updateMany({ where: { clientId: id, revokedAt: null }, data: { revokedAt: new Date() } })
        await tx.clientSecret.create({ data: { clientId: id, secretHash: secret.hash } })
        return { result: { ...toClientDto(client), client_secret: secret.token }, revoked: old.map((s) => s.id) }
      })
      cache.forget(id)
      return rotated
    },

    /**
     * Deletes the client: its secrets' tokens stop working, and so do the
     * sessions users started through it. `authorize` sees the client first.
     */
    async delete(id: string, authorize: (client: { scopes: string[] }) => void) {
      await sessions.withRevocation(async (tx) => {
        const [client] = await tx.$queryRaw<Array<{ scopes: string[] }>>`SELECT scopes FROM clients WHERE id = ${id}::uuid FOR UPDATE`
        if (!client) throw notFound('Client')
        authorize(client)
        const secrets = await tx.clientSecret.findMany({ where: { clientId: id }, select: { id: true } })
        await tx.client.delete({ where: { id } })
        const ended = await sessions.endClientSessions(tx, id, 'client_deleted')
        return { result: undefined, revoked: [...secrets.map((s) => s.id), ...ended] }
      })
      cache.forget(id)
    },

    /** The client and the secret generation that match, or undefined. */
    async authenticate(clientId: string, secret: string) {
      const presented = hashOpaqueToken(secret)
      if (!UUID.test(clientId)) {
        sameHash(presented, DUMMY_HASH)
        return undefined
      }
      const client = await cache.get(clientId, () => prisma.client.findUnique({ where: { id: clientId }, select: credentialsSelect }))
      const match = client?.secrets.find((candidate) => sameHash(presented, candidate.secretHash))
      if (!client || !match) {
        sameHash(presented, DUMMY_HASH)
        return undefined
      }
      return { clientId: client.id, secretId: match.id, scopes: client.scopes }
    }
  }
}

export type ClientsRepository = ReturnType<typeof createClientsRepository>
