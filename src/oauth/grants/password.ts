// The resource owner password credentials grant (RFC 6749 §4.3), for
// first-party tools: the docs page, scripts, the tests. OAuth 2.1 drops it
// for everyone else; apps use the authorization code flow. The checks are
// those of every password sign-in (src/oauth/sign-in.ts); an account with a
// second factor is answered `mfa_required` with a token for the next step
// (the mfa-otp grant).
import { mfaRequired, OAuthError } from '../../lib/errors.js'
import { grantableForRole, grantScopes, scopesForRole } from '../../lib/scopes.js'
import { auditSource } from '../../repositories/audit.js'
import { AMR_PASSWORD } from '../../repositories/sessions.js'
import { AccountChanged, BadCredentials, EmailNotVerified, signInWithPassword } from '../sign-in.js'
import type { GrantHandler } from './types.js'

/** What the client may ask users for, of `scopes`. */
const within = (client: { scopes: string[] }, scopes: readonly string[]) => scopes.filter((scope) => client.scopes.includes(scope))

export const passwordGrant: GrantHandler = async ({ fastify, request, body, reply, client }) => {
  const { username, password, scope } = body
  if (!username || password === undefined) {
    throw new OAuthError('invalid_request', 'The password grant needs "username" and "password".')
  }
  const { sessionsRepository: sessions, tokens } = fastify
  let signedIn
  try {
    signedIn = await signInWithPassword(fastify, request, reply, { email: username, password }, {
      clientId: client.id,
      scope: (account) => grantScopes(scope, within(client, grantableForRole(account.role)), scopesForRole(account.role)),
      // Records `login.success` with the session, in the same statement.
      complete: (account, granted) =>
        sessions.start({ userId: account.id, securityVersion: account.securityVersion, clientId: client.id, scope: granted, amr: AMR_PASSWORD }, auditSource(request))
    })
  } catch (error) {
    if (error instanceof BadCredentials || error instanceof EmailNotVerified || error instanceof AccountChanged) {
      throw new OAuthError('invalid_grant', error.message)
    }
    throw error
  }
  // An account with a second factor gets no session yet: the mfa-otp grant finishes the sign-in.
  if (signedIn.outcome === 'mfa_required') throw mfaRequired(signedIn.mfaToken)
  const { account, scope: granted, result: session } = signedIn
  const access = tokens.issueAccessToken({ sub: account.id, clientId: client.id, scope: granted, sid: session.sessionId, amr: AMR_PASSWORD })
  return {
    access_token: access.accessToken,
    token_type: 'bearer',
    expires_in: access.expiresIn,
    refresh_token: session.refreshToken,
    scope: granted
  }
}
