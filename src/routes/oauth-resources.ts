// What resource servers and relying parties ask the authorization server
// about tokens: who the user is (OpenID Connect UserInfo) and whether a token
// is live (RFC 7662 introspection).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { OAuthError } from '../lib/errors.js'
import { REFRESH_TOKEN_PREFIX } from '../lib/opaque-tokens.js'
import { identityClaims } from '../oauth/claims.js'
import { requestingClient } from '../oauth/client-auth.js'
import { OAuthErrorResponse } from '../schemas/auth.js'
import { problems, Text } from '../schemas/common.js'

const UserInfo = Type.Object(
  {
    sub: Type.String({ description: 'The user id.' }),
    name: Type.Optional(Type.String({ description: 'With `profile`.' })),
    email: Type.Optional(Type.String({ description: 'With `email`.' })),
    email_verified: Type.Optional(Type.Boolean({ description: 'With `email`.' }))
  },
  {
    description: 'Claims about the user, by the scopes of the access token (OpenID Connect Core §5.3).',
    examples: [{ sub: '6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f', name: 'Ada Lovelace', email: 'ada@example.com', email_verified: true }]
  }
)

const IntrospectBody = Type.Object(
  {
    token: Text({ minLength: 1, maxLength: 8192, description: 'An access token or a refresh token.' }),
    token_type_hint: Type.Optional(Text({ maxLength: 50, description: '`access_token` or `refresh_token`; a hint only.' })),
    client_id: Type.Optional(Text({ maxLength: 100 })),
    client_secret: Type.Optional(Text({ maxLength: 200 }))
  },
  { examples: [{ token: 'eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiI2ZjFjIn0.c2ln' }] }
)

const Introspection = Type.Object(
  {
    active: Type.Boolean(),
    scope: Type.Optional(Type.String()),
    client_id: Type.Optional(Type.String()),
    sub: Type.Optional(Type.String()),
    token_type: Type.Optional(Type.String()),
    exp: Type.Optional(Type.Integer()),
    iat: Type.Optional(Type.Integer()),
    iss: Type.Optional(Type.String()),
    aud: Type.Optional(Type.String()),
    jti: Type.Optional(Type.String())
  },
  {
    description: 'RFC 7662: `{ "active": false }` for anything that is not a live token this client may know about.',
    examples: [
      {
        active: true,
        scope: 'openid posts:write',
        client_id: 'public',
        sub: '6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f',
        token_type: 'Bearer',
        exp: 1768471200,
        iat: 1768470300,
        iss: 'https://api.example.com',
        aud: 'blog-api',
        jti: '0d5e8f7a-1b2c-4d3e-9f8a-7b6c5d4e3f2a'
      }
    ]
  }
)

const oauthResourceRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { usersRepository: users, sessionsRepository: sessions, clientsRepository: clients, auditLog, tokens, revocations, config } = fastify

  for (const method of ['GET', 'POST'] as const) {
    fastify.route({
      method,
      url: '/oauth/userinfo',
      onRequest: [fastify.authenticate, fastify.requireScope('openid'), fastify.requireUser],
      schema: {
        tags: ['OAuth and OpenID Connect'],
        operationId: method === 'GET' ? 'userinfo' : 'userinfoPost',
        summary: 'Who the user is (OpenID Connect UserInfo)',
        description: '`sub`, and `name` with `profile`, `email` and `email_verified` with `email`. Needs an access token with `openid`.',
        security: [{ oauth2: ['openid'] }],
        response: { 200: UserInfo, ...problems({ 401: 'Missing, invalid or revoked token', 403: 'No openid scope, or a service client' }) }
      },
      handler: async (request) => ({ sub: request.user.id, ...identityClaims(await users.get(request.user.id), [...request.user.scopes].join(' ')) })
    })
  }

  fastify.post(
    '/oauth/introspect',
    {
      config: { oauthErrors: true, rateLimit: { max: config.AUTH_RATE_LIMIT_MAX, timeWindow: config.AUTH_RATE_LIMIT_WINDOW * 1000 } },
      schema: {
        tags: ['OAuth and OpenID Connect'],
        operationId: 'introspect',
        summary: 'Is this token live? (RFC 7662)',
        description:
          'For authenticated (confidential) clients, such as resource servers. Access tokens are described to any of them; a refresh token only to the client it was issued to. Revoked, expired, unknown and foreign tokens are `{ "active": false }`.',
        consumes: ['application/x-www-form-urlencoded', 'application/json'],
        body: IntrospectBody,
        response: {
          200: Introspection,
          400: { ...OAuthErrorResponse, description: '`invalid_request`: no `token`.' },
          401: { ...OAuthErrorResponse, description: '`invalid_client`: client authentication is required and failed.' },
          ...problems({ 429: 'Too many requests' })
        }
      }
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store')
      const client = await requestingClient(request, request.body, clients, auditLog, fastify.oauth.publicClient)
      if (!client.confidential) throw new OAuthError('invalid_client', 'Introspection needs client authentication.', { basicChallenge: true })
      const { token } = request.body
      if (token.startsWith(REFRESH_TOKEN_PREFIX)) {
        const live = await sessions.describeRefreshToken(token)
        if (!live || live.clientId !== client.id) return { active: false }
        return {
          active: true,
          token_type: 'refresh_token',
          scope: live.scope,
          client_id: live.clientId,
          sub: live.userId,
          exp: Math.floor(live.expiresAt.getTime() / 1000)
        }
      }
      const principal = tokens.verifyAccessToken(token)
      if (!principal || revocations.isRevoked(principal.sessionId) || revocations.isRevoked(principal.tokenId)) return { active: false }
      return {
        active: true,
        token_type: 'Bearer',
        scope: [...principal.scopes].join(' '),
        client_id: principal.clientId,
        sub: principal.id,
        exp: principal.expiresAt,
        ...(principal.issuedAt ? { iat: principal.issuedAt } : {}),
        iss: config.JWT_ISSUER,
        aud: config.JWT_AUDIENCE,
        jti: principal.tokenId
      }
    }
  )
}

export default oauthResourceRoutes
