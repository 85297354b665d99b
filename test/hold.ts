// Holds a password check where an attacker would race it: after argon2 has
// answered, before the sign-in writes anything. A test makes its change to the
// account while a sign-in waits there, deterministically.
import type { FastifyInstance } from 'fastify'
import type { PasswordManager } from '../src/plugins/app/passwords.js'

/**
 * Holds the next password verification once argon2 has answered: `arrived`
 * resolves when a sign-in is waiting there, `release` lets it go on.
 */
export function holdNextVerification(app: FastifyInstance) {
  const manager: PasswordManager = app.passwords
  const original = manager.verify.bind(manager)
  let release = () => {}
  let arrive = () => {}
  const gate = new Promise<void>((resolve) => (release = resolve))
  const arrived = new Promise<void>((resolve) => (arrive = resolve))
  manager.verify = async (...args) => {
    manager.verify = original
    const result = await original(...args)
    arrive()
    await gate
    return result
  }
  return { arrived, release }
}
