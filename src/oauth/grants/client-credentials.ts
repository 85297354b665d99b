// The client_credentials grant (RFC 6749 §4.4): a service logs in as itself.
// Its tokens carry the secret generation as `sid`, so rotating the secret or
// deleting the client revokes them like a session.
import { OAuthError } from '../../lib/errors.js'
import { grantScopes } from '../../lib/scopes.js'
import type { Grant } from './types.js'

export const clientCredentialsGrant: Grant = async ({ fastify, request, body, client }) => {
  if (!client.confidential || !client.secretId) {
    throw new OAuthError('invalid_client', 'The client_credentials grant needs client authentication.', { basicChallenge: true })
  }
  const scope = grantScopes(body.scope, client.scopes)
  await fastify.auditLog.record('client.token', request, { clientId: client.id })
  const access = fastify.tokens.issueAccessToken({ sub: client.id, clientId: client.id, scope, sid: client.secretId })
  return { access_token: access.accessToken, token_type: 'bearer', expires_in: access.expiresIn, scope }
}
