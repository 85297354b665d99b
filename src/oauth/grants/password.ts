// The resource owner password credentials grant (RFC 6749 §4.3), for
// first-party tools: the docs page, scripts, the tests.
//
// The decision is made on the account as it is when the session is written:
// the account is read, the password checked (slow, on purpose), and the
// session written by one statement that requires the account to be still
// active and at the security version that was read. If it moved on meanwhile
// (a password change, deactivation, role change), everything is decided again
// on the new state: the password checked against the current hash, the scopes
// taken from the current role.
//
// An account with MFA gets no session here: once the password is right it is
// answered `mfa_required` with a token for the second step (the mfa-otp
// grant). Its attempt stays counted towards the lockout until a code is
// right, so a known password does not reset the count of wrong codes.
import { mfaRequired, OAuthError } from '../../lib/errors.js'
import { whileClientWaits } from '../../lib/client-waits.js'
import { grantScopes, scopesForRole } from '../../lib/scopes.js'
import { auditSource } from '../../repositories/audit.js'
import { AMR_PASSWORD } from '../../repositories/sessions.js'
import type { Grant } from './types.js'

/** How often a login decides again when its account keeps changing under it. */
const DECISIONS = 2

export const passwordGrant: Grant = async ({ fastify, request, body, reply, client }) => {
  const { username, password, scope } = body
  if (!username || password === undefined) {
    throw new OAuthError('invalid_request', 'The password grant needs "username" and "password".')
  }
  const { usersRepository: users, sessionsRepository: sessions, passwords, loginThrottle, auditLog, tokens, mfa } = fastify
  // Before any lookup or verification: a locked-out account costs the attacker nothing but a 429.
  const attempt = await loginThrottle.attempt(request, username)
  const signal = whileClientWaits(reply)

  for (let decision = 1; decision <= DECISIONS; decision++) {
    const account = await users.findCredentials(username)
    const check = await passwords.verify(account?.passwordHash, password, signal)
    if (!account || !check.valid || !account.isActive) {
      attempt.failed()
      await auditLog.record('login.failure', request, { userId: account?.id })
      if (attempt.lockSeconds > 0) {
        await auditLog.record('login.locked', request, { userId: account?.id, details: { lock_seconds: attempt.lockSeconds } })
      }
      throw new OAuthError('invalid_grant', 'The email or password is incorrect.')
    }
    // Said only now, after the right password, so it tells a guesser nothing.
    if (fastify.config.REQUIRE_VERIFIED_EMAIL && account.emailVerifiedAt === null) {
      await attempt.succeeded(reply)
      throw await fastify.accountEmail.unverifiedLogin(request, account)
    }
    const granted = grantScopes(scope, scopesForRole(account.role))
    const rehash = async () => {
      if (check.needsRehash) await users.rehash(account.id, account.passwordHash, await passwords.hash(password))
    }
    const signIn = { userId: account.id, securityVersion: account.securityVersion, clientId: client.id, scope: granted }
    if (account.mfaEnabled) {
      const mfaToken = await mfa.challenge(request, signIn)
      if (!mfaToken) continue
      await rehash()
      throw mfaRequired(mfaToken)
    }
    // Records `login.success` with the session, in the same statement.
    const session = await sessions.start({ ...signIn, amr: AMR_PASSWORD }, auditSource(request))
    if (!session) continue
    await attempt.succeeded(reply)
    await rehash()
    const access = tokens.issueAccessToken({ sub: account.id, clientId: client.id, scope: granted, sid: session.sessionId, amr: AMR_PASSWORD })
    return {
      access_token: access.accessToken,
      token_type: 'bearer',
      expires_in: access.expiresIn,
      refresh_token: session.refreshToken,
      scope: granted
    }
  }
  throw new OAuthError('invalid_grant', 'The account changed while signing in. Try again.')
}
