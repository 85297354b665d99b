// Owns the one Prisma client of the app: connected through the `pg` driver
// adapter, disconnected when the app closes.
import { PrismaPg } from '@prisma/adapter-pg'
import fp from 'fastify-plugin'
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
    const adapter = new PrismaPg({
      connectionString: DATABASE_URL,
      max: DATABASE_POOL_SIZE,
      // Fail fast while the database is down instead of queueing requests forever.
      connectionTimeoutMillis: 3000,
      idleTimeoutMillis: 30_000,
      query_timeout: 15_000
    })
    const prisma = new PrismaClient({ adapter })
    fastify.decorate('prisma', prisma)
    fastify.addHook('onClose', async () => {
      await prisma.$disconnect()
    })
  },
  { name: 'prisma', dependencies: ['config'] }
)
