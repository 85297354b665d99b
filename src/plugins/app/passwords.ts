// Password hashing with argon2id, and the password policy. A login for an
// unknown account is verified against a dummy hash, so it costs what a wrong
// password costs and the two cannot be told apart by timing.
//
// Each hash runs ARGON2_PARALLELISM threads flat out. Left alone, libuv runs
// four hashes at once (its thread pool), which on a small machine is every
// core several times over, and every other request waits behind them. So
// hashes take turns, by default one per core; logins queue instead. (One
// hash at a time in all, cores ÷ parallelism, starved logins on a shared
// host in the benchmark: fewer threads get a smaller share of the CPU.)
import { randomBytes } from 'node:crypto'
import { availableParallelism } from 'node:os'
import argon2 from 'argon2'
import fp from 'fastify-plugin'
import type { FieldError } from '../../lib/errors.js'
import { createSemaphore } from '../../lib/semaphore.js'

export interface PasswordManager {
  hash(password: string): Promise<string>
  /** Verifies `password` against `hash`, or against the dummy hash when there is no account. */
  verify(hash: string | undefined, password: string): Promise<{ valid: boolean; needsRehash: boolean }>
  /** What is wrong with a new password, or nothing. */
  policyErrors(password: string, field: string, email?: string): FieldError[]
}

declare module 'fastify' {
  interface FastifyInstance {
    passwords: PasswordManager
  }
}

export default fp(
  async function passwordsPlugin(fastify) {
    const { ARGON2_MEMORY_KIB, ARGON2_TIME_COST, ARGON2_PARALLELISM, ARGON2_MAX_CONCURRENT, PASSWORD_MIN_LENGTH } = fastify.config
    const options = {
      type: argon2.argon2id as 2,
      memoryCost: ARGON2_MEMORY_KIB,
      timeCost: ARGON2_TIME_COST,
      parallelism: ARGON2_PARALLELISM
    }
    const turns = createSemaphore(ARGON2_MAX_CONCURRENT || availableParallelism())
    const dummyHash = await argon2.hash(randomBytes(32).toString('base64'), options)

    const manager: PasswordManager = {
      hash: (password) => turns.run(() => argon2.hash(password, options)),

      async verify(hash, password) {
        // Always one verification, so a missing account costs what a wrong password costs.
        const matches = await turns.run(() => argon2.verify(hash ?? dummyHash, password)).catch(() => false)
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
        return []
      }
    }
    fastify.decorate('passwords', manager)
  },
  { name: 'passwords', dependencies: ['config'] }
)
