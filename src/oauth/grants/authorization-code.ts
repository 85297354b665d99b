// The authorization_code grant (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3): a code
// from the authorization endpoint, the exact redirect URI it was sent to, and
// the PKCE verifier of its challenge, from the client it was issued to
// (authenticated if confidential). Answers an access token, a refresh token
// when the client may refresh, and an ID token when `openid` was granted.
import { OAuthError } from '../../lib/errors.js'
import { parseScope } from '../../lib/scopes.js'
import { auditSource } from '../../repositories/audit.js'
import { identityClaims } from '../claims.js'
import type { GrantHandler } from './types.js'

const refused = () =>
  new OAuthError('invalid_grant', 'The authorization code is invalid, expired or spent, or was issued to another client or redirect URI.')

export const authorizationCodeGrant: GrantHandler = async ({ fastify, request, body, client }) => {
  const { code, redirect_uri: redirectUri, code_verifier: codeVerifier } = body
  if (!code || !redirectUri || !codeVerifier) {
    throw new OAuthError('invalid_request', 'The authorization_code grant needs "code", "redirect_uri" and "code_verifier".')
  }
  const { authorizationCodesRepository: codes, usersRepository: users, auditLog, tokens, oauth } = fastify
  const result = await codes.redeem({ code, clientId: client.id, redirectUri, codeVerifier }, auditSource(request))
  if (result.outcome === 'replayed') {
    await auditLog.record('authorization_code.replayed', request, {
      userId: result.userId,
      sessionId: result.sessionId,
      details: { presenting_client_id: client.id }
    })
  }
  if (result.outcome !== 'redeemed') throw refused()

  const { grant, sessionId } = result
  const access = tokens.issueAccessToken({ sub: grant.userId, clientId: client.id, scope: grant.scope, sid: sessionId, amr: grant.amr })
  const idToken = parseScope(grant.scope).includes('openid')
    ? oauth.signIdToken({
        sub: grant.userId,
        clientId: client.id,
        authTime: grant.authTime,
        amr: grant.amr,
        nonce: grant.nonce,
        sid: sessionId,
        claims: { ...identityClaims(await users.get(grant.userId), grant.scope) }
      })
    : undefined
  return {
    access_token: access.accessToken,
    token_type: 'bearer',
    expires_in: access.expiresIn,
    ...(client.grantTypes.includes('refresh_token') ? { refresh_token: result.refreshToken } : {}),
    scope: grant.scope,
    ...(idToken ? { id_token: idToken } : {})
  }
}
