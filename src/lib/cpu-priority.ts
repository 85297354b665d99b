// Giving up CPU priority for the whole process, for password hashing (the
// hashing process, src/lib/argon2-child.ts, and the benchmark's hashing
// bound, which must run as the service's hashes do). Call both before any
// hashing thread starts: on Linux the nice value and the scheduling policy
// belong to each thread, and new threads inherit their creator's.
import { execFileSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import os from 'node:os'

/**
 * Lowers this process's priority by `steps` nice steps (at most to 19) and
 * answers the nice value it now runs at. Renicing the main thread covers
 * libuv's pool and argon2's lane threads, which are started later; the
 * threads that already run (V8's platform workers, the module loader's,
 * perhaps libuv's pool) are reniced one by one through /proc.
 */
export function lowerPriority(steps: number): number {
  if (!(steps > 0)) return os.getPriority(0)
  const nice = Math.min(19, os.getPriority(0) + steps)
  os.setPriority(0, nice)
  let threads: string[] = []
  try {
    threads = readdirSync('/proc/self/task')
  } catch {
    // Not Linux: there the nice value is per process, and set above.
  }
  for (const thread of threads) {
    try {
      os.setPriority(Number(thread), nice)
    } catch {
      // The thread has ended meanwhile.
    }
  }
  return nice
}

/**
 * Puts every thread of this process under SCHED_IDLE (Linux): they run only
 * when no other thread wants the CPU, and a waking request handler takes the
 * CPU from them at once. A nice value alone only shrinks their share: the
 * service's event loop, woken by a request, still waited for a hashing
 * thread's time slice to end, and reads' p99 doubled during a login flood.
 * There is no Node API for the policy; util-linux's `chrt` sets it
 * (unprivileged: a thread may always give up priority). Answers whether it
 * did; without `chrt` the nice value is all there is.
 */
export function idleScheduling(): boolean {
  try {
    execFileSync('chrt', ['--all-tasks', '--idle', '--pid', '0', String(process.pid)], { stdio: 'ignore' })
    return true
  } catch {
    // No chrt (not Linux, or a minimal image): lowered priority only.
    return false
  }
}
