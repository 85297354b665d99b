// The process that computes argon2id hashes for the passwords plugin. The
// service forks it (src/lib/argon2-process.ts) so that hashing runs at a
// lower CPU priority than the event loop: a flood of logins then takes only
// the CPU that requests leave over, and the 64 MiB buffers of each hash live
// and die here, not in the service's heap and allocator.
//
//   argv[2]: how many nice steps below its parent this process runs (0-19)
//   argv[3]: "idle" to run under SCHED_IDLE (Linux), else "normal"
//
// It answers `{ id, op: 'hash' | 'verify', ... }` messages on the IPC channel
// and never logs: passwords pass only through that pipe.
import { execFileSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import os from 'node:os'
import type { Argon2Reply, Argon2Request } from './argon2-process.js'

/**
 * Lowers this process's priority before any hashing thread exists. On Linux
 * the nice value belongs to each thread and new threads inherit their
 * creator's: renicing the main thread covers libuv's pool and argon2's lane
 * threads, which are started later; the threads that already run (V8's
 * platform workers, the module loader's, perhaps libuv's pool) are reniced
 * one by one through /proc.
 */
function lowerPriority(steps: number): void {
  if (!(steps > 0)) return
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
}

/**
 * SCHED_IDLE (Linux): this process's threads run only when no other thread
 * wants the CPU, and a waking request handler takes the CPU from them at once.
 * A nice value alone only shrinks their share: the service's event loop, woken
 * by a request, still waited for a hashing thread's time slice to end, and
 * reads' p99 doubled during a login flood. There is no Node API for the
 * policy; util-linux's `chrt` sets it (unprivileged: a thread may always give
 * up priority) on every thread, and threads started later inherit it. Where
 * `chrt` is missing, the nice value above is all there is.
 */
function idleScheduling(): void {
  try {
    execFileSync('chrt', ['--all-tasks', '--idle', '--pid', '0', String(process.pid)], { stdio: 'ignore' })
  } catch {
    // No chrt (not Linux, or a minimal image): lowered priority only.
  }
}

lowerPriority(Number(process.argv[2] ?? 0))
if (process.argv[3] === 'idle') idleScheduling()

// Loaded only now, so that nothing it starts runs at the parent's priority.
const { default: argon2 } = await import('argon2')

const reply = (message: Argon2Reply) => {
  // The parent may be gone; then this process ends on 'disconnect'.
  if (process.connected) process.send?.(message)
}

async function answer(request: Argon2Request): Promise<void> {
  try {
    const value =
      request.op === 'hash'
        ? await argon2.hash(request.password, { ...request.options, type: argon2.argon2id })
        : await argon2.verify(request.hash, request.password)
    reply({ id: request.id, ok: true, value })
  } catch (error) {
    // argon2's messages name a parameter or the hash format, never the password.
    reply({ id: request.id, ok: false, error: error instanceof Error ? error.message : 'argon2 failed' })
  }
}

process.on('message', (message: Argon2Request) => {
  void answer(message)
})
// The parent closed the channel or died: no one is left to answer.
process.on('disconnect', () => process.exit(0))
