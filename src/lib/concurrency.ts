// A counting semaphore: at most `limit` tasks run at once, the rest wait in
// order. Used to keep password hashing from taking every libuv thread.

export type Limiter = <T>(task: () => Promise<T>) => Promise<T>

export function createLimiter(limit: number): Limiter {
  let running = 0
  const waiting: Array<() => void> = []
  const release = () => {
    running--
    waiting.shift()?.()
  }
  return async (task) => {
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve))
    running++
    try {
      return await task()
    } finally {
      release()
    }
  }
}
