// The OAuth2 token endpoint (RFC 6749), revocation (RFC 7009) and JWKS shapes.
import { Type } from '@sinclair/typebox'
import { Scope } from './common.js'

const Param = (maxLength: number, description: string) => Type.String({ maxLength, description })

/**
 * The token request. RFC 6749 §3.2 says unknown parameters are ignored, so
 * this body alone admits extra properties. Which parameters a grant needs is
 * checked per grant, to answer with the precise RFC 6749 error.
 */
export const TokenBody = Type.Object({
  grant_type: Type.String({
    maxLength: 100,
    description: '`password`, `refresh_token` or `client_credentials`.',
    examples: ['password']
  }),
  username: Type.Optional(Param(254, 'The email (password grant).')),
  password: Type.Optional(Param(1024, 'The password (password grant).')),
  refresh_token: Type.Optional(Param(200, 'The refresh token (refresh_token grant).')),
  scope: Type.Optional(Scope),
  client_id: Type.Optional(Param(100, 'Client id, when not sent with HTTP Basic.')),
  client_secret: Type.Optional(Param(200, 'Client secret, when not sent with HTTP Basic.'))
})

export const TokenResponse = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('bearer'),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires.' }),
  refresh_token: Type.Optional(Type.String({ description: 'Only for the password and refresh_token grants.' })),
  scope: Type.String()
})

export const OAuthErrorResponse = Type.Object(
  {
    error: Type.Union(
      [
        'invalid_request',
        'invalid_client',
        'invalid_grant',
        'unauthorized_client',
        'unsupported_grant_type',
        'invalid_scope'
      ].map((code) => Type.Literal(code))
    ),
    error_description: Type.String()
  },
  { description: 'RFC 6749 §5.2 error.' }
)

export const RevokeBody = Type.Object({
  token: Type.String({ minLength: 1, maxLength: 8192 }),
  token_type_hint: Type.Optional(Type.String({ maxLength: 50, examples: ['refresh_token', 'access_token'] }))
})

export const Jwks = Type.Object({
  keys: Type.Array(
    Type.Object({
      kty: Type.String(),
      crv: Type.String(),
      x: Type.String(),
      y: Type.Optional(Type.String()),
      kid: Type.String(),
      alg: Type.String(),
      use: Type.String()
    })
  )
})
