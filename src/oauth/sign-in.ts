// Signing in with an email and a password, the same way whichever door it
// comes through (the token endpoint's password grant, the browser sign-in
// page): the attempt is counted against the lockout before anything is looked
// up; an unknown email costs one argon2 verification like a wrong password
// and gets the same answer; and what the sign-in produces (a token session, a
// browser sign-in) is written only while the account is still active and at
// the security version read before the slow check — if it moved on meanwhile,
// everything is decided again on the new state (the password against the
// current hash, the scopes from the current role).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { whileClientWaits } from '../lib/client-waits.js'
import type { LoginAttempt } from '../plugins/app/login-throttle.js'
import type { Credentials } from '../repositories/users.js'

/** The email or password is wrong (or the account inactive): one answer for all. */
export class BadCredentials extends Error {
  constructor() {
    super('The email or password is incorrect.')
    this.name = 'BadCredentials'
  }
}

/** The account kept changing while signing in: decided twice, written neither time. */
export class AccountChanged extends Error {
  constructor() {
    super('The account changed while signing in. Try again.')
    this.name = 'AccountChanged'
  }
}

/** How often a sign-in decides again when its account keeps changing under it. */
const DECISIONS = 2

export interface SignedIn<T> {
  account: Credentials
  /** What `complete` wrote. */
  result: T
  attempt: LoginAttempt
}

/**
 * Signs in as `email` with `password`. `complete(account)` writes what the
 * sign-in produces, version-checked, and answers undefined when the account
 * moved on. Throws BadCredentials, AccountChanged, or the throttle's 429.
 */
export async function signInWithPassword<T>(
  fastify: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
  credentials: { email: string; password: string },
  complete: (account: Credentials) => Promise<T | undefined>
): Promise<SignedIn<T>> {
  const { usersRepository: users, passwords, loginThrottle, auditLog } = fastify
  // Before any lookup or verification: a locked-out account costs the attacker nothing but a 429.
  const attempt = await loginThrottle.attempt(request, credentials.email)
  const signal = whileClientWaits(reply)
  for (let decision = 1; decision <= DECISIONS; decision++) {
    const account = await users.findCredentials(credentials.email)
    const check = await passwords.verify(account?.passwordHash, credentials.password, signal)
    if (!account || !check.valid || !account.isActive) {
      attempt.failed()
      await auditLog.record('login.failure', request, { userId: account?.id })
      if (attempt.lockSeconds > 0) {
        await auditLog.record('login.locked', request, { userId: account?.id, details: { lock_seconds: attempt.lockSeconds } })
      }
      throw new BadCredentials()
    }
    const result = await complete(account)
    if (result === undefined) continue
    await attempt.succeeded(reply)
    if (check.needsRehash) await users.rehash(account.id, account.passwordHash, await passwords.hash(credentials.password))
    return { account, result, attempt }
  }
  throw new AccountChanged()
}
