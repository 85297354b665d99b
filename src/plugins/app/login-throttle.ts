// Throttling of password guesses, designed so that guessing is bounded per
// account while nobody without the password can keep the owner out
// (OWASP's "device cookies"; NIST SP 800-63B §5.2.2 allows at most 100
// consecutive failures per account).
//
// - A device where the account signed in successfully gets a device cookie
//   for that account (HMAC'd with APP_SECRET, DEVICE_COOKIE_TTL). Attempts
//   that present it count only against that device: after
//   LOGIN_LOCKOUT_THRESHOLD failures that device is locked, nothing else.
// - Attempts without one are untrusted and count twice: against the account
//   from that address (its /64 for IPv6), locked after
//   LOGIN_LOCKOUT_THRESHOLD failures, and against the account from anywhere,
//   locked after LOGIN_LOCKOUT_ACCOUNT_THRESHOLD. So one attacker locks out
//   only their own address, and a distributed guesser locks out only
//   untrusted devices — the owner's trusted devices still sign in — while
//   getting a bounded number of guesses: the account-wide lockout doubles
//   from LOGIN_LOCKOUT_DELAY up to LOGIN_LOCKOUT_MAX_DELAY, so at most a
//   hundred or so a day at the defaults.
// - An attempt is counted when it starts and forgotten when it succeeds, so a
//   burst of parallel guesses gets no more than the threshold through, and
//   locked buckets refuse (429 with Retry-After) before any password is
//   verified. Keys are hashes of the normalized email whether or not an
//   account has it, so the throttle tells nothing about which emails exist.
//
// Re-authentication inside a session (the current password asked by a
// password change, an email change, a deletion) is throttled apart, per user
// id: a failed login elsewhere does not stop the owner from changing a
// password, and renaming the account's email does not reset the count.
//
// A password reset by email proves the owner by other means: it forgets the
// account's untrusted failures and those of the address that reset, and
// trusts that device (`recovered`); every other address stays locked.
import { createHash, randomBytes } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { serviceUnavailable, tooManyRequests } from '../../lib/errors.js'
import { addressBucket } from '../../lib/client-address.js'
import { type Bucket, type LockoutStore, memoryLockoutStore, redisLockoutStore } from '../../lib/lockout-store.js'
import { normalizeEmail } from '../../repositories/users.js'

export interface LoginAttempt {
  /** The lockout (seconds) this attempt starts unless it succeeds. */
  readonly lockSeconds: number
  /** Whether the attempt came from a device trusted for the account. */
  readonly trusted: boolean
  /** The password (or code) was right: forget this attempt's failures and trust the device. */
  succeeded(reply: FastifyReply): Promise<void>
  /** The password (or code) was wrong: the attempt stays counted (and, past the threshold, locks). */
  failed(): void
}

export interface LoginThrottle {
  /** Counts an attempt to sign in as `email` from this request, or throws 429 while it is locked out. */
  attempt(request: FastifyRequest, email: string): Promise<LoginAttempt>
  /**
   * The owner proved control of the account another way (a password reset by
   * email): forget the account's failures from untrusted devices and from this
   * address, and trust this device. Other addresses stay locked.
   */
  recovered(request: FastifyRequest, reply: FastifyReply, email: string): Promise<void>
}

export interface ReauthThrottle {
  /** Counts a current-password check of the user, or throws 429; `succeeded` forgets the failures. */
  attempt(userId: string): Promise<{ succeeded(): Promise<void> }>
  /** Forgets the user's failed checks (the password was reset). */
  forget(userId: string): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    loginThrottle: LoginThrottle
    reauthThrottle: ReauthThrottle
  }
}

const hash = (...parts: string[]) => createHash('sha256').update(parts.join('\u0000')).digest('base64url')

export default fp(
  async function loginThrottlePlugin(fastify) {
    const { config, appSecret } = fastify
    const policy = {
      baseDelayMs: config.LOGIN_LOCKOUT_DELAY * 1000,
      maxDelayMs: config.LOGIN_LOCKOUT_MAX_DELAY * 1000,
      windowMs: config.LOGIN_LOCKOUT_WINDOW * 1000
    }
    const store: LockoutStore = fastify.redis ? redisLockoutStore(fastify.redis, policy) : memoryLockoutStore(policy)
    fastify.addHook('onClose', async () => store.close())

    // What an operator pages on: a wave of failures or lockouts is a guessing attack.
    const logins = fastify.metrics.counter({
      name: 'blog_api_logins_total',
      help: 'Password logins (and second-factor codes) by outcome: success; failure (wrong email or password, or inactive account); locked (refused while locked out); unavailable (the lockout store is down).',
      labelNames: ['outcome']
    })
    // Every outcome is exported from the start (at 0), so rates over it exist before the first of each.
    for (const outcome of ['success', 'failure', 'locked', 'unavailable']) logins.inc({ outcome }, 0)
    const lockouts = fastify.metrics.counter({
      name: 'blog_api_login_lockouts_total',
      help: 'Failed logins that locked an account (from an address, a device, or untrusted devices as a whole) or doubled a lockout.'
    })
    const secureCookies = new URL(config.PUBLIC_URL).protocol === 'https:'

    /** Counts the attempt in `buckets`, or refuses it; a store that cannot count refuses too. */
    async function count(buckets: Bucket[]) {
      let outcome
      try {
        outcome = await store.attempt(buckets, Date.now())
      } catch (error) {
        // Without its counts the service cannot tell a guess from a login: refuse both for now.
        fastify.log.warn({ err: error }, 'the lockout store is unavailable')
        logins.inc({ outcome: 'unavailable' })
        throw serviceUnavailable()
      }
      if (!outcome.allowed) {
        logins.inc({ outcome: 'locked' })
        throw tooManyRequests(outcome.retryMs / 1000)
      }
      const keys = buckets.map((bucket) => bucket.key)
      return {
        lockSeconds: Math.ceil(outcome.lockMs / 1000),
        // The attempt itself succeeded; a count left behind only expires later.
        forget: () => forget(keys)
      }
    }

    // Device cookies: one per account a browser signed in to, named after the account's key.
    const cookieName = (account: string) => `bapi_device_${account.slice(0, 16)}`
    const cookieMac = (account: string, device: string, issuedAt: string) => appSecret.mac('device-cookie', account, device, issuedAt)

    /** The device id of a valid device cookie for the account, if the request has one. */
    function trustedDevice(request: FastifyRequest, account: string): string | undefined {
      const value = request.cookies[cookieName(account)]
      const [device, issuedAt, mac, ...rest] = value?.split('.') ?? []
      if (!device || !issuedAt || !mac || rest.length > 0 || !/^\d{1,12}$/.test(issuedAt)) return undefined
      if ((Number(issuedAt) + config.DEVICE_COOKIE_TTL) * 1000 <= Date.now()) return undefined
      return appSecret.verify(mac, 'device-cookie', account, device, issuedAt) ? device : undefined
    }

    function trustDevice(reply: FastifyReply, account: string, device = randomBytes(16).toString('base64url')) {
      const issuedAt = String(Math.floor(Date.now() / 1000))
      reply.setCookie(cookieName(account), `${device}.${issuedAt}.${cookieMac(account, device, issuedAt)}`, {
        path: '/',
        httpOnly: true,
        sameSite: 'strict',
        secure: secureCookies,
        maxAge: config.DEVICE_COOKIE_TTL
      })
    }

    /** Forgets counts; a store that cannot is logged, the counts then expire by themselves. */
    async function forget(keys: string[]) {
      await store.reset(keys).catch((error: unknown) => fastify.log.warn({ err: error }, 'could not reset a lockout count'))
    }

    fastify.decorate('loginThrottle', {
      async attempt(request, email) {
        const account = hash('account', normalizeEmail(email))
        const device = trustedDevice(request, account)
        const buckets: Bucket[] = device
          ? [{ key: hash('device', account, device), threshold: config.LOGIN_LOCKOUT_THRESHOLD }]
          : [
              { key: hash('address', account, addressBucket(request.ip)), threshold: config.LOGIN_LOCKOUT_THRESHOLD },
              { key: hash('untrusted', account), threshold: config.LOGIN_LOCKOUT_ACCOUNT_THRESHOLD }
            ]
        const counted = await count(buckets)
        return {
          lockSeconds: counted.lockSeconds,
          trusted: device !== undefined,
          async succeeded(reply) {
            logins.inc({ outcome: 'success' })
            await counted.forget()
            trustDevice(reply, account, device)
          },
          failed() {
            logins.inc({ outcome: 'failure' })
            if (counted.lockSeconds > 0) lockouts.inc()
          }
        }
      },

      async recovered(request, reply, email) {
        const account = hash('account', normalizeEmail(email))
        const device = trustedDevice(request, account)
        await forget([
          hash('untrusted', account),
          hash('address', account, addressBucket(request.ip)),
          ...(device ? [hash('device', account, device)] : [])
        ])
        trustDevice(reply, account, device)
      }
    } satisfies LoginThrottle)

    fastify.decorate('reauthThrottle', {
      async attempt(userId) {
        const counted = await count([{ key: hash('reauth', userId), threshold: config.LOGIN_LOCKOUT_THRESHOLD }])
        return { succeeded: () => counted.forget() }
      },
      forget: (userId) => forget([hash('reauth', userId)])
    } satisfies ReauthThrottle)
  },
  { name: 'login-throttle', dependencies: ['config', 'redis', 'app-secret', '@fastify/cookie', 'metrics'] }
)
