// Owns the one Prisma client of the app: connected through the `pg` driver
// adapter, disconnected when the app closes. The connection pool is made
// here, not inside the adapter, so its use can be measured: connections in
// use, idle, and requests waiting for one (blog_api_db_pool_*).
//
// Two settings for speed, both measured (BENCHMARKS.md):
// - Named prepared statements: PostgreSQL parses and plans each distinct
//   statement once per connection instead of on every query. Not through a
//   transaction pooler (see `preparedStatements` in config.ts).
// - errorFormat 'minimal': otherwise Prisma captures a stack trace for every
//   query, to point at the caller if the query fails.
import { PrismaPg } from '@prisma/adapter-pg'
import fp from 'fastify-plugin'
import pg from 'pg'
import { preparedStatements } from '../../config.js'
import { PrismaClient } from '../../generated/prisma/client.js'

declare module 'fastify' {
  interface FastifyInstance {
    prisma: PrismaClient
  }
}

/** Distinct statements kept prepared; further ones run unnamed, so a stream of ad-hoc SQL cannot grow them without end. */
const MAX_PREPARED = 500

/**
 * A name per distinct SQL text (the same text, the same name on every
 * connection); past `max` texts, '' (the unnamed statement, as without a name).
 */
export function statementNames(max = MAX_PREPARED): (query: { sql: string }) => string {
  const names = new Map<string, string>()
  return ({ sql }) => {
    let name = names.get(sql)
    if (name === undefined && names.size < max) {
      name = `s${names.size}`
      names.set(sql, name)
    }
    return name ?? ''
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
    const adapter = new PrismaPg(pool, preparedStatements(fastify.config) ? { statementNameGenerator: statementNames() } : undefined)
    const prisma = new PrismaClient({ adapter, errorFormat: 'minimal' })
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
