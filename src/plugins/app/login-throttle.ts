// Per-account throttling of failed password logins. After
// LOGIN_LOCKOUT_THRESHOLD failures for one email, further attempts are refused
// (429 with Retry-After) before any password is verified, for a lockout that
// doubles with every further failure up to LOGIN_LOCKOUT_MAX_DELAY. A success
// forgets the failures. Keys are the normalized email whether or not an
// account has it, so the throttle tells nothing about which emails exist.
import { createHash } from 'node:crypto'
import fp from 'fastify-plugin'
import { tooManyRequests } from '../../lib/errors.js'
import { type LockoutStore, memoryLockoutStore, redisLockoutStore } from '../../lib/lockout-store.js'
import { normalizeEmail } from '../../repositories/users.js'

export interface LoginThrottle {
  /** Throws a 429 while the email is locked out. */
  assertAllowed(email: string): Promise<void>
  /** Counts a failed login; answers the lockout (seconds) it starts, 0 for none. */
  failed(email: string): Promise<number>
  /** Forgets the email's failures. */
  succeeded(email: string): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    loginThrottle: LoginThrottle
  }
}

export default fp(
  async function loginThrottlePlugin(fastify) {
    const { config } = fastify
    const policy = {
      threshold: config.LOGIN_LOCKOUT_THRESHOLD,
      baseDelayMs: config.LOGIN_LOCKOUT_DELAY * 1000,
      maxDelayMs: config.LOGIN_LOCKOUT_MAX_DELAY * 1000,
      windowMs: config.LOGIN_LOCKOUT_WINDOW * 1000
    }
    const store: LockoutStore = fastify.redis ? redisLockoutStore(fastify.redis, policy) : memoryLockoutStore(policy)
    fastify.addHook('onClose', async () => store.close())
    // Hashed, so the shared store holds no email addresses.
    const key = (email: string) => createHash('sha256').update(normalizeEmail(email)).digest('base64url')

    fastify.decorate('loginThrottle', {
      async assertAllowed(email) {
        const wait = await store.lockedFor(key(email), Date.now())
        if (wait > 0) throw tooManyRequests(wait / 1000)
      },
      async failed(email) {
        return Math.ceil((await store.fail(key(email), Date.now())) / 1000)
      },
      async succeeded(email) {
        await store.reset(key(email))
      }
    } satisfies LoginThrottle)
  },
  { name: 'login-throttle', dependencies: ['config', 'redis'] }
)
