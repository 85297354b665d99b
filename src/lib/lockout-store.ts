// Counters of failed logins per key, with a lockout that doubles with every
// failure past a threshold. Two stores with one behaviour: in memory for a
// single instance, in Redis (one atomic script per change) for several.

import type { Redis } from 'ioredis'

export interface LockoutPolicy {
  /** Failures that start the first lockout. */
  threshold: number
  /** The first lockout; each further failure doubles it. */
  baseDelayMs: number
  maxDelayMs: number
  /** Failures are forgotten this long after the last one's lockout ends. */
  windowMs: number
}

export interface LockoutStore {
  /** Milliseconds until the key may try again; 0 when it may now. */
  lockedFor(key: string, now: number): Promise<number>
  /** Counts a failure; answers the lockout it starts in milliseconds, 0 for none. */
  fail(key: string, now: number): Promise<number>
  /** Forgets the key's failures (a successful login). */
  reset(key: string): Promise<void>
  close(): void
}

/** The lockout after the `failures`-th failure: 0 below the threshold, then doubling up to the cap. */
export function lockoutDelay(failures: number, policy: LockoutPolicy): number {
  if (failures < policy.threshold) return 0
  const doublings = Math.min(failures - policy.threshold, 40)
  return Math.min(policy.baseDelayMs * 2 ** doublings, policy.maxDelayMs)
}

interface Entry {
  failures: number
  lockedUntil: number
  expiresAt: number
}

export function memoryLockoutStore(policy: LockoutPolicy): LockoutStore {
  const entries = new Map<string, Entry>()
  const live = (key: string, now: number) => {
    const entry = entries.get(key)
    if (entry && entry.expiresAt <= now) {
      entries.delete(key)
      return undefined
    }
    return entry
  }
  // Forgotten keys are dropped now and then, so guessing many emails cannot grow the map forever.
  const sweeper = setInterval(() => {
    const now = Date.now()
    for (const [key, entry] of entries) if (entry.expiresAt <= now) entries.delete(key)
  }, 60_000)
  sweeper.unref()

  return {
    async lockedFor(key, now) {
      return Math.max(0, (live(key, now)?.lockedUntil ?? 0) - now)
    },
    async fail(key, now) {
      const failures = (live(key, now)?.failures ?? 0) + 1
      const delay = lockoutDelay(failures, policy)
      entries.set(key, { failures, lockedUntil: now + delay, expiresAt: now + delay + policy.windowMs })
      return delay
    },
    async reset(key) {
      entries.delete(key)
    },
    close() {
      clearInterval(sweeper)
    }
  }
}

// The same rule as lockoutDelay, inside Redis so concurrent instances cannot lose a count.
const FAIL_SCRIPT = `
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local now, threshold, base, cap, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local delay = 0
if failures >= threshold then
  delay = math.min(base * 2 ^ math.min(failures - threshold, 40), cap)
end
redis.call('HSET', KEYS[1], 'locked_until', now + delay)
redis.call('PEXPIRE', KEYS[1], delay + window)
return delay
`

export function redisLockoutStore(redis: Redis, policy: LockoutPolicy): LockoutStore {
  const name = (key: string) => `lockout:${key}`
  return {
    async lockedFor(key, now) {
      const until = await redis.hget(name(key), 'locked_until')
      return Math.max(0, Number(until ?? 0) - now)
    },
    async fail(key, now) {
      const delay = await redis.eval(
        FAIL_SCRIPT,
        1,
        name(key),
        now,
        policy.threshold,
        policy.baseDelayMs,
        policy.maxDelayMs,
        policy.windowMs
      )
      return Number(delay)
    },
    async reset(key) {
      await redis.del(name(key))
    },
    close() {
      // The connection belongs to the redis plugin.
    }
  }
}
