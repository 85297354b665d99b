// The parent's side of the argon2 child process (src/lib/argon2-child.ts):
// starts it on first use, hands it hash and verify requests over IPC, and
// answers each call with the child's reply.
//
// Why a process: argon2id with the default parameters runs four threads flat
// out per hash; in the service's own thread pool they ran at the event loop's
// priority and, on a small machine, a flood of logins made every other
// request wait. The child lowers its own priority first (a nice value, and
// SCHED_IDLE where it can; see cpu-priority.ts), so the kernel gives the event
// loop the CPU first and the hashes what is left. The 64 MiB
// buffers are allocated and freed there too, away from the service's memory.
//
// If the child dies (killed, out of memory), the calls it had answer 503 and
// the next call starts a fresh one. close() ends it; the channel holds the
// parent's event loop open only while a call is in flight.
import { type ChildProcess, fork } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { FastifyBaseLogger } from 'fastify'
import { serviceUnavailable } from './errors.js'

export interface Argon2Options {
  memoryCost: number
  timeCost: number
  parallelism: number
}

type Argon2Call = { op: 'hash'; password: string; options: Argon2Options } | { op: 'verify'; hash: string; password: string }

/** A message to the child. Passwords travel only in these, over the IPC pipe. */
export type Argon2Request = Argon2Call & { id: number }

/** The child's answer to the request with the same id. */
export type Argon2Reply = { id: number; ok: true; value: string | boolean } | { id: number; ok: false; error: string }

export interface Argon2Process {
  hash(password: string, options: Argon2Options): Promise<string>
  /** Whether `password` matches `hash`; rejects with Argon2Error when `hash` is not one argon2 reads. */
  verify(hash: string, password: string): Promise<boolean>
  /** Ends the child; calls in flight and later ones answer 503. */
  close(): Promise<void>
}

/** argon2 itself refused (a malformed hash, a bad parameter): not the child being gone. */
export class Argon2Error extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'Argon2Error'
  }
}

// From the sources (tsx, Vitest) the child is TypeScript and needs tsx's
// loader; from the build (dist/) it is plain JavaScript. The child is given
// its flags explicitly rather than inheriting the parent's (--inspect,
// --cpu-prof and the like are the parent's own business).
const fromSource = import.meta.url.endsWith('.ts')
const CHILD_ENTRY = fileURLToPath(new URL(`./argon2-child.${fromSource ? 'ts' : 'js'}`, import.meta.url))
const childExecArgv = () =>
  fromSource ? ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href] : []

/**
 * The child's environment: what Node needs, and no more. The service's
 * secrets (database URL, signing key, the first admin's password) stay out.
 */
function childEnv(threads: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { UV_THREADPOOL_SIZE: String(threads) }
  for (const name of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ']) {
    if (process.env[name] !== undefined) env[name] = process.env[name]
  }
  return env
}

/** How long a closing child may take to leave before it is killed. */
const CLOSE_GRACE_MS = 2000

type PendingCall = { resolve(value: string | boolean): void; reject(error: Error): void }

interface Child {
  process: ChildProcess
  alive: boolean
  pending: Map<number, PendingCall>
}

export function createArgon2Process(settings: {
  /** How many nice steps below this process the child runs (0: the same priority). */
  nice: number
  /** Linux: run the child's threads under SCHED_IDLE. */
  idle: boolean
  /** The child's libuv thread pool: as many as hashes may run at once. */
  threads: number
  log: FastifyBaseLogger
}): Argon2Process {
  let current: Child | undefined
  let closing = false
  let nextId = 0

  // Only a call in flight keeps this process alive for the child's sake.
  const holdOpen = (child: Child) => {
    if (child.pending.size > 0) child.process.channel?.ref()
    else child.process.channel?.unref()
  }

  function start(): Child {
    const process_ = fork(CHILD_ENTRY, [String(settings.nice), settings.idle ? 'idle' : 'normal'], {
      execArgv: childExecArgv(),
      env: childEnv(settings.threads),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    })
    process_.unref()
    const child: Child = { process: process_, alive: true, pending: new Map() }

    const gone = () => {
      if (!child.alive) return
      child.alive = false
      if (current === child) current = undefined
      for (const call of child.pending.values()) call.reject(serviceUnavailable())
      child.pending.clear()
    }

    process_.on('message', (message: Argon2Reply) => {
      const call = child.pending.get(message.id)
      if (!call) return
      child.pending.delete(message.id)
      holdOpen(child)
      if (message.ok) call.resolve(message.value)
      else call.reject(new Argon2Error(message.error))
    })
    process_.once('exit', (code, signal) => {
      if (!closing) {
        settings.log.warn({ code, signal, childPid: process_.pid }, 'password hashing process ended; the next hash starts another')
      }
      gone()
    })
    // Not started, or its channel broke: give up on this child (once; killing
    // it can itself emit 'error').
    process_.on('error', (error) => {
      if (!child.alive) return
      settings.log.error({ err: error, childPid: process_.pid }, 'password hashing process failed')
      gone()
      process_.kill('SIGKILL')
    })
    return child
  }

  // Requests sent while the child still starts wait in the channel until it listens.
  function call(request: Argon2Call): Promise<string | boolean> {
    if (closing) return Promise.reject(serviceUnavailable())
    current ??= start()
    const child = current
    return new Promise((resolve, reject) => {
      const id = ++nextId
      child.pending.set(id, { resolve, reject })
      holdOpen(child)
      const message: Argon2Request = { ...request, id }
      child.process.send(message, (error: Error | null) => {
        if (!error || !child.pending.delete(id)) return
        holdOpen(child)
        reject(serviceUnavailable())
      })
    })
  }

  return {
    async hash(password, options) {
      return String(await call({ op: 'hash', password, options }))
    },
    async verify(hash, password) {
      return (await call({ op: 'verify', hash, password })) === true
    },
    async close() {
      closing = true
      const child = current
      current = undefined
      if (!child || !child.alive) return
      const exited = new Promise<void>((resolve) => child.process.once('exit', () => resolve()))
      // The child leaves when its channel closes; one that does not is killed.
      if (child.process.connected) child.process.disconnect()
      else child.process.kill('SIGTERM')
      const timer = setTimeout(() => child.process.kill('SIGKILL'), CLOSE_GRACE_MS)
      await exited
      clearTimeout(timer)
    }
  }
}
