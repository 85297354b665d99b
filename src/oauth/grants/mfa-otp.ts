// The second step of a sign-in with MFA (grant_type
// `urn:blog-api:grant-type:mfa-otp`, an extension grant as RFC 6749 §4.5
// allows): the `mfa_token` of a password login's `mfa_required` answer and a
// code (`otp`: an authenticator code or an unused recovery code) give the
// session the password alone did not. The check is `fastify.mfa.redeem`,
// which every way of signing in shares; the session is written in its
// transaction, at the account version the password was checked at.
import { OAuthError } from '../../lib/errors.js'
import { auditSource } from '../../repositories/audit.js'
import type { GrantHandler } from './types.js'

export const MFA_OTP_GRANT_TYPE = 'urn:blog-api:grant-type:mfa-otp'

const signInAgain = (why: string) => new OAuthError('invalid_grant', `${why} Sign in with your password again.`)

export const mfaOtpGrant: GrantHandler = async ({ fastify, request, body, reply, client }) => {
  const { mfa_token: mfaToken, otp } = body
  if (!mfaToken || !otp) throw new OAuthError('invalid_request', 'The mfa-otp grant needs "mfa_token" and "otp".')
  const { mfa, sessionsRepository: sessions, tokens } = fastify
  // Records `login.success` with the session, in the same statement.
  const redeemed = await mfa.redeem(request, { mfaToken, code: otp, clientId: client.id }, (tx, signIn) =>
    sessions.start(signIn, auditSource(request), tx).then((session) => session && { ...signIn, ...session })
  )
  switch (redeemed.outcome) {
    case 'invalid_token':
      throw signInAgain('The mfa_token is invalid, expired or used up.')
    case 'account_changed':
      throw signInAgain('The account changed while signing in.')
    case 'wrong_code':
      throw new OAuthError(
        'invalid_grant',
        redeemed.exhausted ? 'The code is incorrect, and that was the last try of this mfa_token. Sign in with your password again.' : 'The code is incorrect.'
      )
    case 'completed':
      break
  }
  const session = redeemed.result
  await redeemed.attempt.succeeded(reply)
  const access = tokens.issueAccessToken({ sub: session.userId, clientId: client.id, scope: session.scope, sid: session.sessionId, amr: session.amr })
  return {
    access_token: access.accessToken,
    token_type: 'bearer',
    expires_in: access.expiresIn,
    refresh_token: session.refreshToken,
    scope: session.scope
  }
}
