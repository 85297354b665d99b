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

/**
 * An attempt is counted as a failure when it starts, and forgotten by a reset
 * when it succeeds: so attempts sent all at once cannot slip past the lockout
 * before their failures are counted.
 */
export type AttemptOutcome =
  | { allowed: true; /** The lockout this attempt starts unless it succeeds. */ lockMs: number }
  | { allowed: false; /** How long the key is still locked out. */ retryMs: number }

export interface LockoutStore {
  /** Refuses the attempt while the key is locked out; else counts it. */
  attempt(key: string, now: number): Promise<AttemptOutcome>
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
    // No await inside: in one process the check and the count cannot interleave.
    async attempt(key, now) {
      const entry = live(key, now)
      if (entry && entry.lockedUntil > now) return { allowed: false, retryMs: entry.lockedUntil - now }
      const failures = (entry?.failures ?? 0) + 1
      const lockMs = lockoutDelay(failures, policy)
      entries.set(key, { failures, lockedUntil: now + lockMs, expiresAt: now + lockMs + policy.windowMs })
      return { allowed: true, lockMs }
    },
    async reset(key) {
      entries.delete(key)
    },
    close() {
      clearInterval(sweeper)
    }
  }
}

// The same rule as the memory store, as one script, so concurrent attempts on
// any number of instances are each refused or counted, never both let through.
const ATTEMPT_SCRIPT = `
local now, threshold, base, cap, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local lockedUntil = tonumber(redis.call('HGET', KEYS[1], 'locked_until') or '0')
if lockedUntil > now then
  return {0, lockedUntil - now}
end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local lock = 0
if failures >= threshold then
  lock = math.min(base * 2 ^ math.min(failures - threshold, 40), cap)
end
redis.call('HSET', KEYS[1], 'locked_until', now + lock)
redis.call('PEXPIRE', KEYS[1], lock + window)
return {1, lock}
`

export function redisLockoutStore(redis: Redis, policy: LockoutPolicy): LockoutStore {
  const name = (key: string) => `lockout:${key}`
  return {
    async attempt(key, now) {
      const [allowed, ms] = (await redis.eval(
        ATTEMPT_SCRIPT,
        1,
        name(key),
        now,
        policy.threshold,
        policy.baseDelayMs,
        policy.maxDelayMs,
        policy.windowMs
      )) as [number, number]
      return allowed === 1 ? { allowed: true, lockMs: Number(ms) } : { allowed: false, retryMs: Number(ms) }
    },
    async reset(key) {
      await redis.del(name(key))
    },
    close() {
      // The connection belongs to the redis plugin.
    }
  }
}
