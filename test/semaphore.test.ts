// The semaphore that makes password hashes take turns: never more than its
// limit at once, waiters served in arrival order, a failed task frees its slot.
import { describe, expect, it } from 'vitest'
import { createSemaphore } from '../src/lib/semaphore.js'

const tick = () => new Promise((resolve) => setTimeout(resolve, 5))

describe('hashing takes turns', () => {
  it('never runs more tasks at once than its limit, and runs them all', async () => {
    const turns = createSemaphore(2)
    let running = 0
    let most = 0
    const results = await Promise.all(
      Array.from({ length: 7 }, (_, i) =>
        turns.run(async () => {
          running++
          most = Math.max(most, running)
          await tick()
          running--
          return i
        })
      )
    )
    expect(most).toBe(2)
    expect(results).toEqual([0, 1, 2, 3, 4, 5, 6])
    expect(turns.waiting).toBe(0)
  })

  it('serves waiters in the order they came', async () => {
    const turns = createSemaphore(1)
    const order: number[] = []
    await Promise.all([1, 2, 3, 4].map((n) => turns.run(async () => { await tick(); order.push(n) })))
    expect(order).toEqual([1, 2, 3, 4])
  })

  it('frees the slot of a task that fails', async () => {
    const turns = createSemaphore(1)
    await expect(turns.run(async () => { throw new Error('boom') })).rejects.toThrow('boom')
    await expect(turns.run(async () => 'next')).resolves.toBe('next')
  })
})
