// The shared store of several instances: a Redis connection when REDIS_URL is
// set, else nothing (`fastify.redis` is null and rate limits and lockouts are
// kept in memory, which is right for one instance). Connects at start, so a
// wrong URL stops the server instead of surfacing at the first login.
import fp from 'fastify-plugin'
import { Redis } from 'ioredis'

declare module 'fastify' {
  interface FastifyInstance {
    redis: Redis | null
  }
}

export default fp(
  async function redisPlugin(fastify) {
    const url = fastify.config.REDIS_URL
    if (!url) {
      fastify.decorate('redis', null)
      return
    }
    const redis = new Redis(url, {
      lazyConnect: true,
      connectTimeout: 3000,
      // While Redis is away a request fails after one retry instead of waiting in a queue.
      maxRetriesPerRequest: 1,
      // Names only what the rate limiter and the lockout store; the same Redis may serve others.
      keyPrefix: 'bapi:'
    })
    // Without a listener, a connection error would end the process; ioredis reconnects by itself.
    redis.on('error', (error: Error) => fastify.log.warn({ err: error }, 'redis connection error'))
    await redis.connect()
    fastify.decorate('redis', redis)
    fastify.addHook('onClose', async () => {
      await redis.quit().catch(() => redis.disconnect())
    })
  },
  { name: 'redis', dependencies: ['config'] }
)
