// OAuth clients and their secret generations. A client's access tokens
// carry the id of the secret generation that minted them as `sid`, so
// rotating the secret or deleting the client revokes them like a session.
// Public clients (browser and mobile apps) have no secret at all.
// Authentication reads a client through the client cache
// (plugins/app/client-cache.ts), which every change forgets.
import type { Prisma, PrismaClient } from '../generated/prisma/client.js'
import type { ClientCache } from '../plugins/app/client-cache.js'
import { conflict, notFound } from '../lib/errors.js'
import { CLIENT_SECRET_PREFIX, hashOpaqueToken, newOpaqueToken, sameHash } from '../lib/opaque-tokens.js'
import type { OAuthClient, Registration } from '../oauth/clients.js'
import { pageIds, toPage } from './cursor.js'
import type { SessionsRepository } from './sessions.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
// Compared against when the client is unknown, so both paths do the same work.
const DUMMY_HASH = hashOpaqueToken('no such client')

const clientSelect = {
  id: true,
  name: true,
  scopes: true,
  grantTypes: true,
  redirectUris: true,
  postLogoutRedirectUris: true,
  isPublic: true,
  firstParty: true,
  createdAt: true
} as const

/** What authenticating a client needs: the client and the hashes of its live secrets. */
const credentialsSelect = {
  ...clientSelect,
  secrets: { where: { revokedAt: null }, select: { id: true, secretHash: true } }
} satisfies Prisma.ClientSelect
export type ClientCredentials = Prisma.ClientGetPayload<{ select: typeof credentialsSelect }>

type ClientRow = OAuthClient & { createdAt: Date }

export const toClientDto = (client: ClientRow) => ({
  client_id: client.id,
  name: client.name,
  scopes: client.scopes,
  grant_types: client.grantTypes,
  redirect_uris: client.redirectUris,
  post_logout_redirect_uris: client.postLogoutRedirectUris,
  public: client.isPublic,
  first_party: client.firstParty,
  created_at: client.createdAt.toISOString()
})

const toOAuthClient = ({ createdAt: _createdAt, ...client }: ClientRow): OAuthClient => client

/** A client locked for a change in the running transaction, or a 404. */
async function lockClient(tx: Parameters<Parameters<SessionsRepository['withRevocation']>[0]>[0], id: string) {
  const [client] = await tx.$queryRaw<Array<{ id: string }>>`SELECT id FROM clients WHERE id = ${id}::uuid FOR UPDATE`
  if (!client) throw notFound('Client')
  return tx.client.findUniqueOrThrow({ where: { id }, select: clientSelect })
}

export function createClientsRepository(prisma: PrismaClient, sessions: SessionsRepository, cache: ClientCache) {
  return {
    /** Registers a client; a confidential one gets its first secret, shown only in this answer. */
    async create(input: { name: string } & Registration): Promise<ReturnType<typeof toClientDto> & { client_secret?: string }> {
      const secret = input.isPublic ? undefined : newOpaqueToken(CLIENT_SECRET_PREFIX)
      const client = await prisma.client.create({
        data: { ...input, ...(secret ? { secrets: { create: { secretHash: secret.hash } } } : {}) },
        select: clientSelect
      })
      return { ...toClientDto(client), ...(secret ? { client_secret: secret.token } : {}) }
    },

    async list(query: { limit: number; cursor?: string }) {
      const ids = await pageIds(prisma, 'clients', query, 'asc')
      const rows = await prisma.client.findMany({ where: { id: { in: ids } }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], select: clientSelect })
      return toPage(rows, query.limit, toClientDto)
    },

    /** A registered client by id; undefined for an unknown or malformed id. */
    async find(id: string): Promise<OAuthClient | undefined> {
      if (!UUID.test(id)) return undefined
      const client = await prisma.client.findUnique({ where: { id }, select: clientSelect })
      return client ? toOAuthClient(client) : undefined
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
    async rotateSecret(id: string, authorize: (client: OAuthClient) => void) {
      const secret = newOpaqueToken(CLIENT_SECRET_PREFIX)
      const rotated = await sessions.withRevocation(async (tx) => {
        const client = await lockClient(tx, id)
        authorize(toOAuthClient(client))
        if (client.isPublic) throw conflict('A public client has no secret to rotate.')
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
    async delete(id: string, authorize: (client: OAuthClient) => void) {
      await sessions.withRevocation(async (tx) => {
        authorize(toOAuthClient(await lockClient(tx, id)))
        const secrets = await tx.clientSecret.findMany({ where: { clientId: id }, select: { id: true } })
        await tx.client.delete({ where: { id } })
        const ended = await sessions.endClientSessions(tx, id, 'client_deleted')
        return { result: undefined, revoked: [...secrets.map((s) => s.id), ...ended] }
      })
      cache.forget(id)
    },

    /** The confidential client and the secret generation that match, or undefined. */
    async authenticate(clientId: string, secret: string): Promise<(OAuthClient & { secretId: string }) | undefined> {
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
      const { secrets: _secrets, ...row } = client
      return { ...toOAuthClient(row), secretId: match.id }
    }
  }
}

export type ClientsRepository = ReturnType<typeof createClientsRepository>
