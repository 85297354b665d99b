// What the service supports as an authorization server and OpenID provider,
// for clients to configure themselves: RFC 8414 metadata and OpenID Connect
// Discovery 1.0. Both describe exactly what is implemented, no more.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { SCOPES } from '../lib/scopes.js'
import { GRANTS } from '../oauth/grants/index.js'
import { problems } from '../schemas/common.js'

const Metadata = Type.Object(
  {
    issuer: Type.String(),
    authorization_endpoint: Type.String(),
    token_endpoint: Type.String(),
    jwks_uri: Type.String(),
    userinfo_endpoint: Type.String(),
    introspection_endpoint: Type.String(),
    revocation_endpoint: Type.String(),
    end_session_endpoint: Type.String(),
    scopes_supported: Type.Array(Type.String()),
    response_types_supported: Type.Array(Type.String()),
    response_modes_supported: Type.Array(Type.String()),
    grant_types_supported: Type.Array(Type.String()),
    token_endpoint_auth_methods_supported: Type.Array(Type.String()),
    introspection_endpoint_auth_methods_supported: Type.Array(Type.String()),
    revocation_endpoint_auth_methods_supported: Type.Array(Type.String()),
    code_challenge_methods_supported: Type.Array(Type.String()),
    subject_types_supported: Type.Array(Type.String()),
    id_token_signing_alg_values_supported: Type.Array(Type.String()),
    claims_supported: Type.Array(Type.String()),
    prompt_values_supported: Type.Array(Type.String()),
    authorization_response_iss_parameter_supported: Type.Boolean(),
    claims_parameter_supported: Type.Boolean(),
    request_parameter_supported: Type.Boolean(),
    request_uri_parameter_supported: Type.Boolean()
  },
  { description: 'Server metadata (RFC 8414; OpenID Connect Discovery 1.0).' }
)

const discoveryRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { config, signingKeys } = fastify
  const base = config.PUBLIC_URL.replace(/\/+$/, '')
  const metadata = {
    issuer: config.JWT_ISSUER,
    authorization_endpoint: `${base}/oauth/authorize`,
    token_endpoint: `${base}/auth/token`,
    jwks_uri: `${base}/.well-known/jwks.json`,
    userinfo_endpoint: `${base}/oauth/userinfo`,
    introspection_endpoint: `${base}/oauth/introspect`,
    revocation_endpoint: `${base}/auth/revoke`,
    end_session_endpoint: `${base}/oauth/logout`,
    scopes_supported: Object.keys(SCOPES),
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: [...GRANTS.keys()],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
    introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    revocation_endpoint_auth_methods_supported: ['none'],
    code_challenge_methods_supported: ['S256'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: [signingKeys.algorithm],
    claims_supported: ['iss', 'sub', 'aud', 'azp', 'exp', 'iat', 'auth_time', 'nonce', 'amr', 'sid', 'name', 'email', 'email_verified'],
    prompt_values_supported: ['none', 'login', 'consent'],
    authorization_response_iss_parameter_supported: true,
    claims_parameter_supported: false,
    request_parameter_supported: false,
    request_uri_parameter_supported: false
  }

  for (const [url, operationId, summary] of [
    ['/.well-known/openid-configuration', 'openidConfiguration', 'OpenID Connect Discovery'],
    ['/.well-known/oauth-authorization-server', 'authorizationServerMetadata', 'Authorization server metadata (RFC 8414)']
  ] as const) {
    fastify.get(
      url,
      {
        schema: {
          tags: ['OAuth and OpenID Connect'],
          operationId,
          summary,
          description: 'The endpoints, grants, scopes and algorithms this service supports. Cacheable for 5 minutes.',
          response: { 200: Metadata, ...problems({}) }
        }
      },
      async (_request, reply) => {
        reply.header('cache-control', 'public, max-age=300')
        return metadata
      }
    )
  }
}

export default discoveryRoutes
