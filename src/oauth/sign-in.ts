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

/** The password was right, but REQUIRE_VERIFIED_EMAIL wants a verified email first (a fresh link is on its way). */
export class EmailNotVerified extends Error {
  constructor() {
    super('The email address of this account is not verified yet: open the link sent to it (a new one is on its way).')
    this.name = 'EmailNotVerified'
  }
}

/** How often a sign-in decides again when its account keeps changing under it. */
const DECISIONS = 2

/** Where a password sign-in continues, and what it produces when the password is all it takes. */
export interface SignInDoor<T> {
  /**
   * The client the second step is bound to (an mfa_token is redeemable only
   * by it): the token endpoint's client, or the sign-in page.
   */
  clientId: string
  /** The scope the sign-in is for, decided on the account as it is. */
  scope: (account: Credentials) => string
  /** Writes what the sign-in produces, version-checked; undefined when the account moved on. */
  complete: (account: Credentials, scope: string) => Promise<T | undefined>
}

export type PasswordSignIn<T> =
  | { outcome: 'signed_in'; account: Credentials; scope: string; result: T }
  /** The password was right and the account has a second factor: the next step needs `mfaToken` and a code. */
  | { outcome: 'mfa_required'; account: Credentials; mfaToken: string }

/**
 * Signs in as `email` with `password`: `door.complete` runs for an account
 * without a second factor; one with MFA gets a challenge instead, and its
 * attempt stays counted towards the lockout until a code is right (so a known
 * password does not clear the count of wrong codes). Throws BadCredentials,
 * EmailNotVerified (only after a right password, so it tells a guesser
 * nothing), AccountChanged, or the throttle's 429.
 */
export async function signInWithPassword<T>(
  fastify: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
  credentials: { email: string; password: string },
  door: SignInDoor<T>
): Promise<PasswordSignIn<T>> {
  const { usersRepository: users, passwords, loginThrottle, auditLog, mfa } = fastify
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
    // Before any second factor: an unverified account never gets an mfa_token either.
    if (fastify.config.REQUIRE_VERIFIED_EMAIL && account.emailVerifiedAt === null) {
      // The password was right: as a success for the lockout.
      await attempt.succeeded(reply)
      await fastify.accountEmail.unverifiedLogin(request, account)
      throw new EmailNotVerified()
    }
    const rehash = async () => {
      if (check.needsRehash) await users.rehash(account.id, account.passwordHash, await passwords.hash(credentials.password))
    }
    const scope = door.scope(account)
    if (account.mfaEnabled) {
      const mfaToken = await mfa.challenge(request, { userId: account.id, securityVersion: account.securityVersion, clientId: door.clientId, scope })
      if (mfaToken === undefined) continue
      await rehash()
      return { outcome: 'mfa_required', account, mfaToken }
    }
    const result = await door.complete(account, scope)
    if (result === undefined) continue
    await attempt.succeeded(reply)
    await rehash()
    return { outcome: 'signed_in', account, scope, result }
  }
  throw new AccountChanged()
}
