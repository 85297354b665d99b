// Password hashing with argon2id, and the password policy. A login for an
// unknown account is verified against a dummy hash, so it costs what a wrong
// password costs and the two cannot be told apart by timing.
//
// The policy follows NIST SP 800-63B: a minimum length (PASSWORD_MIN_LENGTH),
// long passphrases accepted (up to 1024 characters), no composition rules,
// and no password that is on a list of common ones or equal to the email.
//
// Hashes run in a child process at a lower CPU priority (ARGON2_NICE; see
// src/lib/argon2-process.ts): each one keeps ARGON2_PARALLELISM threads busy,
// and at the event loop's priority a flood of logins made every other request
// wait on a small machine. They also take turns: at most ARGON2_CONCURRENCY
// run at once (by default one per core), the rest queue here, so the child's
// threads stay few whatever the burst. A request whose client has gone leaves
// the queue unhashed (its `signal`).
//
// Measured: hashes waiting for a turn, how long they waited and how long
// they took (blog_api_password_hash_*), and a trace span per hash.
import { randomBytes } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { performance } from 'node:perf_hooks'
import argon2 from 'argon2'
import fp from 'fastify-plugin'
import commonPasswordList from '../../data/common-passwords.json' with { type: 'json' }
import { type Argon2Options, Argon2Error, createArgon2Process } from '../../lib/argon2-process.js'
import type { FieldError } from '../../lib/errors.js'
import { createSemaphore } from '../../lib/semaphore.js'

/** The bundled list (src/data/README.md), lower-cased once for case-insensitive lookups. */
export const COMMON_PASSWORDS: ReadonlySet<string> = new Set(commonPasswordList.map((password) => password.toLowerCase()))

export interface PasswordManager {
  /** Hashes a password; `signal`: give up if it aborts while the hash waits for its turn. */
  hash(password: string, signal?: AbortSignal): Promise<string>
  /**
   * Verifies `password` against `hash`, or against the dummy hash when there
   * is no account; `signal`: give up if it aborts while waiting for a turn.
   */
  verify(hash: string | undefined, password: string, signal?: AbortSignal): Promise<{ valid: boolean; needsRehash: boolean }>
  /** What is wrong with a new password, or nothing. */
  policyErrors(password: string, field: string, email?: string): FieldError[]
}

/**
 * A hash in argon2's own format with the configured parameters, a random salt
 * and a random digest: verifying any password against it costs one full
 * argon2id computation, as for a real account, and never succeeds. Made
 * without hashing, so starting the service starts no hashing process.
 */
function dummyHash(options: Argon2Options): string {
  const b64 = (bytes: number) => randomBytes(bytes).toString('base64').replace(/=+$/, '')
  return `$argon2id$v=19$m=${options.memoryCost},p=${options.parallelism},t=${options.timeCost}$${b64(16)}$${b64(32)}`
}

declare module 'fastify' {
  interface FastifyInstance {
    passwords: PasswordManager
  }
}

export default fp(
  async function passwordsPlugin(fastify) {
    const { ARGON2_MEMORY_KIB, ARGON2_TIME_COST, ARGON2_PARALLELISM, ARGON2_CONCURRENCY, ARGON2_NICE, ARGON2_IDLE_SCHEDULING, PASSWORD_MIN_LENGTH } =
      fastify.config
    const options: Argon2Options = {
      memoryCost: ARGON2_MEMORY_KIB,
      timeCost: ARGON2_TIME_COST,
      parallelism: ARGON2_PARALLELISM
    }
    const concurrency = ARGON2_CONCURRENCY || availableParallelism()
    const turns = createSemaphore(concurrency)
    const unknownAccount = dummyHash(options)
    // Started on the first hash, not here: most app instances (a test's, a
    // command-line tool's) never hash, and a fork costs them time for nothing.
    const hasher = createArgon2Process({
      nice: ARGON2_NICE,
      idle: ARGON2_IDLE_SCHEDULING,
      threads: concurrency,
      log: fastify.log
    })
    fastify.addHook('onClose', () => hasher.close())

    fastify.metrics.gauge({
      name: 'blog_api_password_hash_queue',
      help: 'Password hashes and verifications waiting for a turn (at most ARGON2_CONCURRENCY run at once).',
      collect() {
        this.set(turns.waiting)
      }
    })
    fastify.metrics.gauge({
      name: 'blog_api_password_hashes_running',
      help: 'Password hashes and verifications running now (at most ARGON2_CONCURRENCY).',
      collect() {
        this.set(turns.running)
      }
    })
    const waited = fastify.metrics.histogram({
      name: 'blog_api_password_hash_wait_seconds',
      help: 'How long a password hash or verification waited for its turn.',
      buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
    })
    const took = fastify.metrics.histogram({
      name: 'blog_api_password_hash_duration_seconds',
      help: 'How long a password hash or verification took once it had its turn.',
      labelNames: ['operation'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2]
    })
    /** Runs one argon2 operation in its turn, measured and traced. */
    const inTurn = <T>(operation: 'hash' | 'verify', work: () => Promise<T>, signal?: AbortSignal) =>
      fastify.tracing.span(`argon2 ${operation}`, () => {
        const queuedAt = performance.now()
        return turns.run(async () => {
          const startedAt = performance.now()
          waited.observe((startedAt - queuedAt) / 1000)
          try {
            return await work()
          } finally {
            took.observe({ operation }, (performance.now() - startedAt) / 1000)
          }
        }, signal)
      })

    const manager: PasswordManager = {
      hash: (password, signal) => inTurn('hash', () => hasher.hash(password, options), signal),

      async verify(hash, password, signal) {
        // Always one verification, so a missing account costs what a wrong password costs.
        // A hash argon2 cannot read matches nothing; a hashing process that is
        // gone is the service's failure (503), not a wrong password.
        const matches = await inTurn('verify', () => hasher.verify(hash ?? unknownAccount, password), signal)
          .catch((error: unknown) => {
            if (error instanceof Argon2Error) return false
            throw error
          })
        if (!matches || hash === undefined) return { valid: false, needsRehash: false }
        return { valid: true, needsRehash: argon2.needsRehash(hash, options) }
      },

      policyErrors(password, field, email) {
        const length = [...password].length
        if (length < PASSWORD_MIN_LENGTH) {
          return [{ field, message: `must be at least ${PASSWORD_MIN_LENGTH} characters` }]
        }
        if (email && password.trim().toLowerCase() === email.trim().toLowerCase()) {
          return [{ field, message: 'must not be your email address' }]
        }
        if (COMMON_PASSWORDS.has(password.trim().toLowerCase())) {
          return [{ field, message: 'is one of the most common passwords; choose another' }]
        }
        return []
      }
    }
    fastify.decorate('passwords', manager)
  },
  { name: 'passwords', dependencies: ['config', 'metrics', 'tracing'] }
)
