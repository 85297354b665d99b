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

  it('drops a waiter whose signal aborts, without running it, and serves the next', async () => {
    const turns = createSemaphore(1)
    const ran: string[] = []
    let finishFirst = () => {}
    const first = turns.run(() => new Promise<void>((resolve) => (finishFirst = () => { ran.push('first'); resolve() })))
    const gone = new AbortController()
    const abandoned = turns.run(async () => { ran.push('abandoned') }, gone.signal)
    const next = turns.run(async () => { ran.push('next') })
    expect(turns.waiting).toBe(2)

    gone.abort(new Error('client gone'))
    await expect(abandoned).rejects.toThrow('client gone')
    expect(turns.waiting).toBe(1)
    finishFirst()
    await Promise.all([first, next])
    expect(ran).toEqual(['first', 'next'])
    expect(turns.waiting).toBe(0)
  })

  it('does not start a task whose signal has already aborted, and keeps running one that started', async () => {
    const turns = createSemaphore(1)
    await expect(turns.run(async () => 'never', AbortSignal.abort(new Error('gone')))).rejects.toThrow('gone')
    const started = new AbortController()
    const running = turns.run(async () => { started.abort(new Error('too late')); await tick(); return 'finished' }, started.signal)
    await expect(running).resolves.toBe('finished')
    await expect(turns.run(async () => 'free')).resolves.toBe('free')
  })
})
