// The limiter that keeps password hashing from occupying every libuv thread:
// never more than its limit at once, waiting tasks run in order, and a
// failing task frees its place.
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { createLimiter } from '../src/lib/concurrency.js'

describe('createLimiter', () => {
  it('runs at most `limit` tasks at once, the others in arrival order', async () => {
    const limit = createLimiter(2)
    let running = 0
    let peak = 0
    const started: number[] = []
    const task = (n: number) => limit(async () => {
      started.push(n)
      running++
      peak = Math.max(peak, running)
      await sleep(10)
      running--
      return n
    })
    expect(await Promise.all([1, 2, 3, 4, 5, 6].map(task))).toEqual([1, 2, 3, 4, 5, 6])
    expect(peak).toBe(2)
    expect(started).toEqual([1, 2, 3, 4, 5, 6])
  })

  it('a failing task frees its place for the next one', async () => {
    const limit = createLimiter(1)
    const failed = limit(() => Promise.reject(new Error('boom')))
    const next = limit(() => Promise.resolve('ran'))
    await expect(failed).rejects.toThrow('boom')
    expect(await next).toBe('ran')
  })
})
