// Counters of failed attempts per bucket, with a lockout that doubles with
// every failure past the bucket's threshold. An attempt is counted in several
// buckets at once (an account from one address, and the account as a whole):
// it is refused while any of them is locked, and otherwise counted in all of
// them, atomically. Two stores with one behaviour: in memory for a single
// instance, in Redis (one script per attempt) for several.

import type { Redis } from 'ioredis'

export interface LockoutPolicy {
  /** The first lockout; each further failure doubles it. */
  baseDelayMs: number
  maxDelayMs: number
  /** Failures are forgotten this long after the last one's lockout ends. */
  windowMs: number
}

/** One counter an attempt is counted in, and the failures that start its lockout. */
export interface Bucket {
  key: string
  threshold: number
}

/**
 * An attempt is counted as a failure when it starts, and forgotten by a reset
 * when it succeeds: so attempts sent all at once cannot slip past the lockout
 * before their failures are counted.
 */
export type AttemptOutcome =
  | { allowed: true; /** The longest lockout this attempt starts unless it succeeds. */ lockMs: number }
  | { allowed: false; /** How long the attempt's buckets are still locked out. */ retryMs: number }

export interface LockoutStore {
  /** Refuses the attempt while any of its buckets is locked out; else counts it in each. */
  attempt(buckets: Bucket[], now: number): Promise<AttemptOutcome>
  /** Forgets the failures of these buckets (a success). */
  reset(keys: string[]): Promise<void>
  close(): void
}

/** The lockout after the `failures`-th failure: 0 below the threshold, then doubling up to the cap. */
export function lockoutDelay(failures: number, threshold: number, policy: LockoutPolicy): number {
  if (failures < threshold) return 0
  const doublings = Math.min(failures - threshold, 40)
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
    // No await inside: in one process the check and the counts cannot interleave.
    async attempt(buckets, now) {
      const retryMs = Math.max(0, ...buckets.map((bucket) => (live(bucket.key, now)?.lockedUntil ?? 0) - now))
      if (retryMs > 0) return { allowed: false, retryMs }
      let lockMs = 0
      for (const { key, threshold } of buckets) {
        const failures = (live(key, now)?.failures ?? 0) + 1
        const lock = lockoutDelay(failures, threshold, policy)
        entries.set(key, { failures, lockedUntil: now + lock, expiresAt: now + lock + policy.windowMs })
        lockMs = Math.max(lockMs, lock)
      }
      return { allowed: true, lockMs }
    },
    async reset(keys) {
      for (const key of keys) entries.delete(key)
    },
    close() {
      clearInterval(sweeper)
    }
  }
}

// The same rule as the memory store, as one script, so concurrent attempts on
// any number of instances are each refused or counted, never both let through.
// KEYS: the buckets; ARGV: now, base, cap, window, then each bucket's threshold.
const ATTEMPT_SCRIPT = `
local now, base, cap, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local wait = 0
for _, key in ipairs(KEYS) do
  local lockedUntil = tonumber(redis.call('HGET', key, 'locked_until') or '0')
  if lockedUntil - now > wait then wait = lockedUntil - now end
end
if wait > 0 then
  return {0, wait}
end
local longest = 0
for i, key in ipairs(KEYS) do
  local threshold = tonumber(ARGV[4 + i])
  local failures = redis.call('HINCRBY', key, 'failures', 1)
  local lock = 0
  if failures >= threshold then
    lock = math.min(base * 2 ^ math.min(failures - threshold, 40), cap)
  end
  redis.call('HSET', key, 'locked_until', now + lock)
  redis.call('PEXPIRE', key, lock + window)
  if lock > longest then longest = lock end
end
return {1, longest}
`

export function redisLockoutStore(redis: Redis, policy: LockoutPolicy): LockoutStore {
  const name = (key: string) => `lockout:${key}`
  return {
    async attempt(buckets, now) {
      const [allowed, ms] = (await redis.eval(
        ATTEMPT_SCRIPT,
        buckets.length,
        ...buckets.map((bucket) => name(bucket.key)),
        now,
        policy.baseDelayMs,
        policy.maxDelayMs,
        policy.windowMs,
        ...buckets.map((bucket) => bucket.threshold)
      )) as [number, number]
      return allowed === 1 ? { allowed: true, lockMs: Number(ms) } : { allowed: false, retryMs: Number(ms) }
    },
    async reset(keys) {
      if (keys.length > 0) await redis.del(...keys.map(name))
    },
    close() {
      // The connection belongs to the redis plugin.
    }
  }
}
