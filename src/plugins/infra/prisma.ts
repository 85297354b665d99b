// Owns the one Prisma client of the app: connected through the `pg` driver
// adapter, disconnected when the app closes. The connection pool is made
// here, not inside the adapter, so its use can be measured: connections in
// use, idle, and requests waiting for one (blog_api_db_pool_*).
import { PrismaPg } from '@prisma/adapter-pg'
import fp from 'fastify-plugin'
import pg from 'pg'
import { PrismaClient } from '../../generated/prisma/client.js'

declare module 'fastify' {
  interface FastifyInstance {
    prisma: PrismaClient
  }
}

export default fp(
  async function prismaPlugin(fastify) {
    const { DATABASE_URL, DATABASE_POOL_SIZE } = fastify.config
    if (!DATABASE_URL) throw new Error('DATABASE_URL must be resolved before the app is built')
    const pool = new pg.Pool({
      connectionString: DATABASE_URL,
      max: DATABASE_POOL_SIZE,
      // Fail fast while the database is down instead of queueing requests forever.
      connectionTimeoutMillis: 3000,
      idleTimeoutMillis: 30_000,
      query_timeout: 15_000
    })
    // An idle connection that the server ends (a restart, a shutdown) must not end the process.
    pool.on('error', (error) => fastify.log.debug({ err: error }, 'an idle database connection was closed'))
    const prisma = new PrismaClient({ adapter: new PrismaPg(pool) })
    fastify.decorate('prisma', prisma)
    fastify.addHook('onClose', async () => {
      await prisma.$disconnect()
      await pool.end()
    })

    fastify.metrics.gauge({
      name: 'blog_api_db_pool_connections',
      help: 'Connections of the database pool, by state (in_use, idle), out of DATABASE_POOL_SIZE.',
      labelNames: ['state'],
      collect() {
        this.set({ state: 'in_use' }, pool.totalCount - pool.idleCount)
        this.set({ state: 'idle' }, pool.idleCount)
      }
    })
    fastify.metrics.gauge({
      name: 'blog_api_db_pool_waiting',
      help: 'Queries waiting for a free connection of the database pool.',
      collect() {
        this.set(pool.waitingCount)
      }
    })
  },
  { name: 'prisma', dependencies: ['config', 'metrics'] }
)
