// Per-account throttling of failed password logins. After
// LOGIN_LOCKOUT_THRESHOLD failures for one email, further attempts are refused
// (429 with Retry-After) before any password is verified, for a lockout that
// doubles with every further failure up to LOGIN_LOCKOUT_MAX_DELAY. An
// attempt is counted when it starts and a success forgets the count, so a
// burst of parallel guesses gets no more than the threshold through. Keys are
// the normalized email whether or not an account has it, so the throttle
// tells nothing about which emails exist.
import { createHash } from 'node:crypto'
import fp from 'fastify-plugin'
import { serviceUnavailable, tooManyRequests } from '../../lib/errors.js'
import { type AttemptOutcome, type LockoutStore, memoryLockoutStore, redisLockoutStore } from '../../lib/lockout-store.js'
import { normalizeEmail } from '../../repositories/users.js'

export interface LoginThrottle {
  /**
   * Counts an attempt for the email, or throws a 429 while it is locked out.
   * Answers the lockout (seconds) this attempt starts unless it succeeds.
   */
  attempt(email: string): Promise<number>
  /** Forgets the email's failures, this attempt's included. */
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
      async attempt(email) {
        let outcome: AttemptOutcome
        try {
          outcome = await store.attempt(key(email), Date.now())
        } catch (error) {
          // Without its counts the service cannot tell a guess from a login: refuse both for now.
          fastify.log.warn({ err: error }, 'the lockout store is unavailable')
          throw serviceUnavailable()
        }
        if (!outcome.allowed) throw tooManyRequests(outcome.retryMs / 1000)
        return Math.ceil(outcome.lockMs / 1000)
      },
      async succeeded(email) {
        // The login itself succeeded; a count left behind only expires later.
        await store.reset(key(email)).catch((error: unknown) => {
          fastify.log.warn({ err: error }, 'could not reset a lockout count')
        })
      }
    } satisfies LoginThrottle)
  },
  { name: 'login-throttle', dependencies: ['config', 'redis'] }
)
