// Revoked sessions, kept in memory so that refusing a revoked access token
// costs no database query. The set is loaded from `revoked_sessions` at start
// and kept current on every instance through PostgreSQL LISTEN/NOTIFY: the
// transaction that revokes a session notifies on commit. After a lost
// connection the listener reconnects and reloads the whole set.
//
// A notification's payload is `sid|expiresAt|sentAt` (milliseconds since the
// epoch); a receiver reports how late the last one arrived
// (blog_api_revocation_notification_lag_seconds), between instances whose
// clocks agree. Receivers read only the fields they know.
import fp from 'fastify-plugin'
import type { Prisma } from '../../generated/prisma/client.js'

export const REVOCATION_CHANNEL = 'revoked_sessions'

export interface RevocationStore {
  isRevoked(sessionId: string): boolean
  /**
   * Inside a transaction: records the sessions as revoked and notifies every
   * instance when it commits. Call `remember` after the commit.
   */
  revokeInTransaction(tx: Prisma.TransactionClient, sessionIds: string[]): Promise<Date>
  /** Adds sessions to this instance's set at once, without waiting for the notification. */
  remember(sessionIds: string[], expiresAt: Date): void
  /** Whether the listener is connected (the set is current). */
  readonly listening: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    revocations: RevocationStore
  }
}

const SWEEP_INTERVAL_MS = 60_000

export default fp(
  async function revocationsPlugin(fastify) {
    const { prisma, config, log } = fastify
    // sid → when an entry stops mattering (every token of it has expired).
    const revoked = new Map<string, number>()
    // Access tokens of a session revoked now live at most this much longer.
    const entryLifetimeMs = (config.ACCESS_TOKEN_TTL + config.JWT_CLOCK_TOLERANCE + 5) * 1000

    async function reload() {
      const rows = await prisma.revokedSession.findMany({
        where: { expiresAt: { gt: new Date() } },
        select: { sid: true, expiresAt: true }
      })
      for (const row of rows) revoked.set(row.sid, row.expiresAt.getTime())
    }

    const revocations = fastify.metrics.counter({
      name: 'blog_api_sessions_revoked_total',
      help: 'Sessions (and service-client tokens) revoked by this instance: logout, revocation, password change, reuse, account changes.'
    })
    const lag = fastify.metrics.gauge({
      name: 'blog_api_revocation_notification_lag_seconds',
      help: 'How long the last revocation notification took from the revoking instance to this one.'
    })

    fastify.notifications.subscribe(REVOCATION_CHANNEL, {
      message(payload) {
        const [sid, expiresAt, sentAt] = payload.split('|')
        if (sid && expiresAt) revoked.set(sid, Number(expiresAt))
        if (sentAt) lag.set(Math.max(0, Date.now() - Number(sentAt)) / 1000)
      },
      resync: reload
    })

    const sweep = setInterval(() => {
      const now = Date.now()
      for (const [sid, expiresAt] of revoked) if (expiresAt <= now) revoked.delete(sid)
      prisma.revokedSession
        .deleteMany({ where: { expiresAt: { lte: new Date(now) } } })
        .catch((error: unknown) => log.debug({ err: error }, 'could not prune revoked sessions'))
    }, SWEEP_INTERVAL_MS)
    sweep.unref()

    const store: RevocationStore = {
      isRevoked(sessionId) {
        const expiresAt = revoked.get(sessionId)
        return expiresAt !== undefined && expiresAt > Date.now()
      },
      async revokeInTransaction(tx, sessionIds) {
        const expiresAt = new Date(Date.now() + entryLifetimeMs)
        if (sessionIds.length === 0) return expiresAt
        await tx.revokedSession.createMany({
          data: sessionIds.map((sid) => ({ sid, expiresAt })),
          skipDuplicates: true
        })
        for (const sid of sessionIds) {
          await tx.$executeRaw`SELECT pg_notify(${REVOCATION_CHANNEL}, ${`${sid}|${expiresAt.getTime()}|${Date.now()}`})`
        }
        return expiresAt
      },
      remember(sessionIds, expiresAt) {
        revocations.inc(sessionIds.length)
        for (const sid of sessionIds) revoked.set(sid, expiresAt.getTime())
      },
      get listening() {
        return fastify.notifications.listening
      }
    }
    fastify.decorate('revocations', store)

    fastify.addHook('onClose', async () => clearInterval(sweep))
  },
  { name: 'revocations', dependencies: ['config', 'prisma', 'notifications', 'metrics'] }
)
