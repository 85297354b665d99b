// The resource owner password credentials grant (RFC 6749 §4.3), for
// first-party tools: the docs page, scripts, the tests. OAuth 2.1 drops it
// for everyone else; apps use the authorization code flow. The checks are
// those of every password sign-in (src/oauth/sign-in.ts).
import { OAuthError } from '../../lib/errors.js'
import { grantableForRole, grantScopes, scopesForRole } from '../../lib/scopes.js'
import { auditSource } from '../../repositories/audit.js'
import { AccountChanged, BadCredentials, signInWithPassword } from '../sign-in.js'
import type { GrantHandler } from './types.js'

/** What the client may ask users for, of `scopes`. */
const within = (client: { scopes: string[] }, scopes: readonly string[]) => scopes.filter((scope) => client.scopes.includes(scope))

export const passwordGrant: GrantHandler = async ({ fastify, request, body, reply, client }) => {
  const { username, password, scope } = body
  if (!username || password === undefined) {
    throw new OAuthError('invalid_request', 'The password grant needs "username" and "password".')
  }
  const { sessionsRepository: sessions, tokens } = fastify
  try {
    const { account, result } = await signInWithPassword(fastify, request, reply, { email: username, password }, async (account) => {
      const granted = grantScopes(scope, within(client, grantableForRole(account.role)), scopesForRole(account.role))
      // Records `login.success` with the session, in the same statement.
      const session = await sessions.start(
        { userId: account.id, securityVersion: account.securityVersion, clientId: client.id, scope: granted },
        auditSource(request)
      )
      return session && { ...session, scope: granted }
    })
    const access = tokens.issueAccessToken({ sub: account.id, clientId: client.id, scope: result.scope, sid: result.sessionId })
    return {
      access_token: access.accessToken,
      token_type: 'bearer',
      expires_in: access.expiresIn,
      refresh_token: result.refreshToken,
      scope: result.scope
    }
  } catch (error) {
    if (error instanceof BadCredentials || error instanceof AccountChanged) throw new OAuthError('invalid_grant', error.message)
    throw error
  }
}
