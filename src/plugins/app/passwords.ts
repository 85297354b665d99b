// Password hashing with argon2id, and the password policy. A login for an
// unknown account is verified against a dummy hash, so it costs what a wrong
// password costs and the two cannot be told apart by timing.
//
// The policy follows NIST SP 800-63B: a minimum length (PASSWORD_MIN_LENGTH),
// long passphrases accepted (up to 1024 characters), no composition rules,
// and no password that is on a list of common ones or equal to the email.
//
// Hashing takes turns: each hash runs ARGON2_PARALLELISM threads flat out, and
// libuv's thread pool (4 threads) would otherwise run four at once. On a small
// machine that is every core several times over, and every other request
// waits; the pool is also where new database connections do their SCRAM
// handshake, which then times out (503). So at most ARGON2_CONCURRENCY hashes
// run at once, by default one per core, and a burst of logins queues here.
import { randomBytes } from 'node:crypto'
import { availableParallelism } from 'node:os'
import argon2 from 'argon2'
import fp from 'fastify-plugin'
import commonPasswordList from '../../data/common-passwords.json' with { type: 'json' }
import type { FieldError } from '../../lib/errors.js'
import { createSemaphore } from '../../lib/semaphore.js'

/** The bundled list (src/data/README.md), lower-cased once for case-insensitive lookups. */
export const COMMON_PASSWORDS: ReadonlySet<string> = new Set(commonPasswordList.map((password) => password.toLowerCase()))

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
    const { ARGON2_MEMORY_KIB, ARGON2_TIME_COST, ARGON2_PARALLELISM, ARGON2_CONCURRENCY, PASSWORD_MIN_LENGTH } = fastify.config
    const options = {
      type: argon2.argon2id as 2,
      memoryCost: ARGON2_MEMORY_KIB,
      timeCost: ARGON2_TIME_COST,
      parallelism: ARGON2_PARALLELISM
    }
    const turns = createSemaphore(ARGON2_CONCURRENCY || availableParallelism())
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
        if (COMMON_PASSWORDS.has(password.trim().toLowerCase())) {
          return [{ field, message: 'is one of the most common passwords; choose another' }]
        }
        return []
      }
    }
    fastify.decorate('passwords', manager)
  },
  { name: 'passwords', dependencies: ['config'] }
)
