// Service clients' credentials kept in memory, so that the client_credentials
// grant needs no database round trip: a service asking for tokens over and
// over (as services do) costs a SHA-256, a lookup here, and a signature.
//
// What is cached is what authenticating needs: the client, its scopes and
// the hashes of its live secrets, or the fact that no client has that id. A
// rotated secret or a deleted client must stop authenticating at once,
// everywhere:
// - Database triggers (the `client_change_notifications` migration) notify
//   every instance on commit of any change to a client or its secrets,
//   whoever makes it; the entry is forgotten when the notification arrives,
//   within milliseconds, as revocations of access tokens are.
// - The instance that makes a change forgets the entry itself as it commits.
// - A lookup that raced with a change does not remember what it read.
// - While the notification listener is disconnected every grant reads the
//   database, and everything is forgotten when it reconnects.
// - Entries expire after CLIENT_TTL_MS whatever happens.
import fp from 'fastify-plugin'
import { LRUCache } from 'lru-cache'
import type { ClientCredentials } from '../../repositories/clients.js'

export const CLIENT_CHANGES_CHANNEL = 'client_changes'

export interface ClientCache {
  /** The client from memory, or from `load` (remembered when that is safe); null: no such client. */
  get(clientId: string, load: () => Promise<ClientCredentials | null>): Promise<ClientCredentials | null>
  /** Forgets a client this instance just changed or deleted. */
  forget(clientId: string): void
}

declare module 'fastify' {
  interface FastifyInstance {
    clientCache: ClientCache
  }
}

const CLIENT_TTL_MS = 5 * 60 * 1000
/** Clients kept; and, apart, ids known to be nobody's, so a flood of made-up ids cannot push real clients out. */
const MAX_CLIENTS = 10_000
const MAX_UNKNOWN = 10_000

export default fp(
  async function clientCachePlugin(fastify) {
    const { notifications } = fastify
    const known = new LRUCache<string, ClientCredentials>({ max: MAX_CLIENTS, ttl: CLIENT_TTL_MS, ttlAutopurge: false })
    const unknown = new LRUCache<string, true>({ max: MAX_UNKNOWN, ttl: CLIENT_TTL_MS, ttlAutopurge: false })
    // Bumped whenever anything is forgotten: a lookup that saw it change while it ran may have read the old rows.
    let forgotten = 0

    const forget = (clientId: string) => {
      forgotten++
      known.delete(clientId)
      unknown.delete(clientId)
    }
    const forgetAll = () => {
      forgotten++
      known.clear()
      unknown.clear()
    }

    notifications.subscribe(CLIENT_CHANGES_CHANNEL, {
      message: (payload) => (payload === '*' ? forgetAll() : forget(payload)),
      resync: forgetAll,
      lost: forgetAll
    })

    fastify.decorate('clientCache', {
      async get(clientId, load) {
        if (!notifications.listening) return load()
        const client = known.get(clientId)
        if (client) return client
        if (unknown.has(clientId)) return null
        const before = forgotten
        const loaded = await load()
        if (forgotten === before && notifications.listening) {
          if (loaded) known.set(clientId, loaded)
          else unknown.set(clientId, true)
        }
        return loaded
      },
      forget
    } satisfies ClientCache)
  },
  { name: 'client-cache', dependencies: ['notifications'] }
)
