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
import type { Argon2Reply, Argon2Request } from './argon2-process.js'
import { idleScheduling, lowerPriority } from './cpu-priority.js'

// Before any hashing thread exists (see cpu-priority.ts).
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
