// A counting semaphore: at most `limit` tasks run at once, the rest wait in
// arrival order. Used to keep CPU-heavy work (password hashing) from taking
// every core away from the event loop.
//
// A task whose `signal` aborts while it waits leaves the queue without
// running: a login whose client has gone need not cost a hash, which in a
// flood would delay the clients still waiting.
export interface Semaphore {
  /** Runs `task` when a slot is free; rejects with the signal's reason if it aborts first. */
  run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T>
  /** Tasks waiting for a slot. */
  readonly waiting: number
  /** Tasks running now. */
  readonly running: number
}

export function createSemaphore(limit: number): Semaphore {
  let running = 0
  const queue: (() => void)[] = []

  const release = () => {
    const next = queue.shift()
    if (next) next()
    else running--
  }

  /** Waits for a released slot (handed over with `running` unchanged), unless the signal aborts first. */
  const turn = (signal?: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      const take = () => {
        signal?.removeEventListener('abort', leave)
        resolve()
      }
      const leave = () => {
        const index = queue.indexOf(take)
        if (index >= 0) queue.splice(index, 1)
        reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted', { cause: signal?.reason }))
      }
      queue.push(take)
      signal?.addEventListener('abort', leave, { once: true })
    })

  return {
    async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
      signal?.throwIfAborted()
      if (running < limit) running++
      else await turn(signal)
      try {
        return await task()
      } finally {
        release()
      }
    },
    get waiting() {
      return queue.length
    },
    get running() {
      return running
    }
  }
}
