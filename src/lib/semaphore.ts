// A counting semaphore: at most `limit` tasks run at once, the rest wait in
// arrival order. Used to keep CPU-heavy work (password hashing) from taking
// every core away from the event loop.
export interface Semaphore {
  run<T>(task: () => Promise<T>): Promise<T>
  /** Tasks waiting for a slot. */
  readonly waiting: number
}

export function createSemaphore(limit: number): Semaphore {
  let running = 0
  const queue: (() => void)[] = []

  const release = () => {
    const next = queue.shift()
    if (next) next()
    else running--
  }

  return {
    async run<T>(task: () => Promise<T>): Promise<T> {
      if (running < limit) running++
      // A released slot passes straight to the next waiter: `running` stays.
      else await new Promise<void>((resolve) => queue.push(resolve))
      try {
        return await task()
      } finally {
        release()
      }
    },
    get waiting() {
      return queue.length
    }
  }
}
