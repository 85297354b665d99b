// The client_credentials grant (RFC 6749 §4.4): a service logs in as itself.
// Its tokens carry the secret generation as `sid`, so rotating the secret or
// deleting the client revokes them like a session.
import { OAuthError } from '../../lib/errors.js'
import { CLIENT_SCOPES, grantScopes } from '../../lib/scopes.js'
import type { GrantHandler } from './types.js'

export const clientCredentialsGrant: GrantHandler = async ({ fastify, request, body, client }) => {
  // The token endpoint lets only authenticated clients here (confidentialOnly); this keeps the type honest.
  if (!client.secretId) throw new OAuthError('invalid_client', 'The client_credentials grant needs client authentication.', { basicChallenge: true })
  // A client holds only administrative scopes itself; the others it may only ask users for.
  const scope = grantScopes(body.scope, client.scopes.filter((held) => (CLIENT_SCOPES as readonly string[]).includes(held)))
  await fastify.auditLog.record('client.token', request, { clientId: client.id })
  const access = fastify.tokens.issueAccessToken({ sub: client.id, clientId: client.id, scope, sid: client.secretId })
  return { access_token: access.accessToken, token_type: 'bearer', expires_in: access.expiresIn, scope }
}
