// The hashing bound: how many argon2id verifications per second this machine
// does with the service's configured parameters, keeping as many in flight as
// libuv's thread pool runs at once (or as argv[3] says). A login cannot be
// faster than one verification, so this is the ceiling for the password
// grant. It runs at the priority the service gives its hashing process
// (ARGON2_NICE steps lower, and SCHED_IDLE with ARGON2_IDLE_SCHEDULING), so
// both get the same share of a busy machine.
// Prints one JSON line.
//
//   node --import tsx bench/argon2-bound.ts SECONDS [IN_FLIGHT]
import { loadConfig } from '../src/config.js'
import { idleScheduling, lowerPriority } from '../src/lib/cpu-priority.js'

const seconds = Number(process.argv[2] ?? 10)
// Only the hashing settings matter here; the rest just has to load.
const config = loadConfig({ ...process.env, DATABASE_URL: process.env.DATABASE_URL ?? 'postgres://unused', MAIL_DISABLED: 'true' })
// Before any hashing thread exists, as in the service's hashing process.
const nice = lowerPriority(config.ARGON2_NICE)
const idle = config.ARGON2_IDLE_SCHEDULING && idleScheduling()
const { default: argon2 } = await import('argon2')
const options = {
  type: argon2.argon2id as 2,
  memoryCost: config.ARGON2_MEMORY_KIB,
  timeCost: config.ARGON2_TIME_COST,
  parallelism: config.ARGON2_PARALLELISM
}
const threadpool = Number(process.env.UV_THREADPOOL_SIZE ?? 4)
const inFlight = Number(process.argv[3] ?? threadpool)
const password = 'correct horse battery staple'
const hash = await argon2.hash(password, options)
await argon2.verify(hash, password)

let done = 0
const deadline = performance.now() + seconds * 1000
async function worker() {
  while (performance.now() < deadline) {
    if (!(await argon2.verify(hash, password))) throw new Error('verification failed')
    done++
  }
}
const started = performance.now()
await Promise.all(Array.from({ length: inFlight }, worker))
const elapsed = (performance.now() - started) / 1000
process.stdout.write(
  JSON.stringify({ perSecond: done / elapsed, verifications: done, threadpool, inFlight, nice, idle, memoryKiB: options.memoryCost, timeCost: options.timeCost, parallelism: options.parallelism }) + '\n'
)
