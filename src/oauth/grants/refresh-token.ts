// The refresh_token grant (RFC 6749 §6): a new access token and a new refresh
// token for the client the session was issued to, with the session's scopes
// as the account's role allows them now (src/repositories/sessions.ts).
import { OAuthError } from '../../lib/errors.js'
import { parseScope } from '../../lib/scopes.js'
import type { GrantHandler } from './types.js'

const refused = () => new OAuthError('invalid_grant', 'The refresh token is invalid, expired or revoked.')

export const refreshTokenGrant: GrantHandler = async ({ fastify, request, body, client }) => {
  const { refresh_token: token, scope } = body
  if (!token) throw new OAuthError('invalid_request', 'The refresh_token grant needs "refresh_token".')
  const { sessionsRepository: sessions, auditLog, tokens } = fastify
  const result = await sessions.rotate({ token, clientId: client.id, narrowTo: parseScope(scope) })
  if (result.outcome === 'unknown') throw refused()
  const actor = { userId: result.userId, sessionId: result.sessionId }
  if (result.outcome === 'reused') {
    fastify.tokenMetrics.refreshTokenReuse.inc()
    await auditLog.record('refresh_token.reuse', request, actor)
  }
  if (result.outcome === 'wrong_client') {
    await auditLog.record('refresh_token.wrong_client', request, { ...actor, details: { presenting_client_id: client.id } })
  }
  if (result.outcome !== 'rotated') throw refused()
  await auditLog.record('token.refresh', request, { ...actor, ...(result.retried ? { details: { retried: true } } : {}) })
  const access = tokens.issueAccessToken({ sub: result.userId, clientId: client.id, scope: result.scope, sid: result.sessionId, amr: result.amr })
  return {
    access_token: access.accessToken,
    token_type: 'bearer',
    expires_in: access.expiresIn,
    refresh_token: result.refreshToken,
    scope: result.scope
  }
}
