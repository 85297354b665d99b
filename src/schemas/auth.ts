// The OAuth2 token endpoint (RFC 6749), revocation (RFC 7009) and JWKS shapes.
import { Type } from '@sinclair/typebox'
import { Scope, Text } from './common.js'
import { Code } from './mfa.js'

const Param = (maxLength: number, description: string) => Text({ maxLength, description })

/**
 * The token request. RFC 6749 §3.2 says unknown parameters are ignored, so
 * this body alone admits extra properties. Which parameters a grant needs is
 * checked per grant, to answer with the precise RFC 6749 error.
 */
export const TokenBody = Type.Object({
  grant_type: Text({
    maxLength: 100,
    description: '`authorization_code`, `refresh_token`, `client_credentials`, `password` or `urn:blog-api:grant-type:mfa-otp`.',
    examples: ['authorization_code']
  }),
  code: Type.Optional(Param(200, 'The authorization code (authorization_code grant).')),
  redirect_uri: Type.Optional(Param(2000, 'The redirect URI the code was sent to, exactly (authorization_code grant).')),
  code_verifier: Type.Optional(Param(128, 'The PKCE verifier whose S256 challenge started the authorization (authorization_code grant).')),
  username: Type.Optional(Param(254, 'The email (password grant).')),
  password: Type.Optional(Param(1024, 'The password (password grant).')),
  refresh_token: Type.Optional(Param(200, 'The refresh token (refresh_token grant).')),
  mfa_token: Type.Optional(Param(100, 'The `mfa_token` of an `mfa_required` answer (mfa-otp grant).')),
  otp: Type.Optional({ ...Code, description: 'An authenticator code or an unused recovery code (mfa-otp grant).' }),
  scope: Type.Optional(Scope),
  client_id: Type.Optional(Param(100, 'Client id, when not sent with HTTP Basic.')),
  client_secret: Type.Optional(Param(200, 'Client secret, when not sent with HTTP Basic.'))
}, {
  // Named examples, one per grant (OpenAPI media-type `examples`).
  'x-examples': {
    authorization_code: {
      summary: 'Exchange an authorization code (public client: client_id, no secret)',
      value: {
        grant_type: 'authorization_code',
        code: 'bapi_ac_Zm9yIGV4YW1wbGUgb25seTogYSBjb2RlIGxpdmVzIDYwIHM',
        redirect_uri: 'https://app.example.com/callback',
        code_verifier: 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk',
        client_id: '3f0c9a1e-7d2b-4c5a-8e6f-1a2b3c4d5e6f'
      }
    },
    password: {
      summary: 'Log in with email and password',
      value: { grant_type: 'password', username: 'ada@example.com', password: 'correct horse battery staple' }
    },
    mfa_otp: {
      summary: 'Finish a login that answered mfa_required, with an authenticator or recovery code',
      value: { grant_type: 'urn:blog-api:grant-type:mfa-otp', mfa_token: 'bapi_mfa_Yk3-EXAMPLEexampleEXAMPLEexampleEXAMPLEe', otp: '492039' }
    },
    refresh_token: {
      summary: 'Refresh (the refresh token is spent, a new one comes back)',
      value: { grant_type: 'refresh_token', refresh_token: 'bapi_rt_3q2-7wEXAMPLEexampleEXAMPLEexampleEXAMPLEex' }
    },
    client_credentials: {
      summary: 'A service logs in (credentials here, or with HTTP Basic)',
      value: {
        grant_type: 'client_credentials',
        client_id: '3f0c9a1e-7d2b-4c5a-8e6f-1a2b3c4d5e6f',
        client_secret: 'bapi_cs_Q2hhbmdlIG1lOiBJIGFtIGFuIGV4YW1wbGUgc2VjcmV0',
        scope: 'users:read'
      }
    }
  }
})

export const TokenResponse = Type.Object(
  {
    access_token: Type.String({ description: 'An RFC 9068 JWT: send it as `Authorization: Bearer <token>`.' }),
    token_type: Type.Literal('bearer'),
    expires_in: Type.Integer({ description: 'Seconds until the access token expires.' }),
    refresh_token: Type.Optional(Type.String({ description: 'For the grants that sign a user in, when the client may refresh.' })),
    scope: Type.String({ description: 'The scopes granted, space-separated.' }),
    id_token: Type.Optional(Type.String({ description: 'An OpenID Connect ID token, when `openid` was granted (authorization_code grant).' }))
  },
  {
    description: 'Tokens (sent with `Cache-Control: no-store`).',
    examples: [
      {
        access_token: 'eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCIsImtpZCI6IjVjNmY0YjJhIn0.eyJzdWIiOiI2ZjFjMmQzZSJ9.c2lnbmF0dXJl',
        token_type: 'bearer',
        expires_in: 900,
        refresh_token: 'bapi_rt_3q2-7wEXAMPLEexampleEXAMPLEexampleEXAMPLEex',
        scope: 'posts:write'
      }
    ]
  }
)

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
  {
    description: 'RFC 6749 §5.2 error.',
    examples: [{ error: 'invalid_grant', error_description: 'The email or password is incorrect.' }]
  }
)

/** The answer of a password login whose account needs a second factor (403). */
export const MfaRequiredResponse = Type.Object(
  {
    error: Type.Literal('mfa_required'),
    error_description: Type.String(),
    mfa_token: Type.String({
      description: 'Send it with `otp` to this endpoint (`grant_type=urn:blog-api:grant-type:mfa-otp`): it works once, for 5 minutes, for at most 5 codes.'
    })
  },
  {
    description:
      'The password was right, but the account has MFA on: no tokens yet. Finish with the mfa-otp grant, from the same client and within 5 minutes.',
    examples: [
      {
        error: 'mfa_required',
        error_description: 'This account needs a second factor: send an authenticator or recovery code with the mfa_token.',
        mfa_token: 'bapi_mfa_Yk3-EXAMPLEexampleEXAMPLEexampleEXAMPLEe'
      }
    ]
  }
)

export const RevokeBody = Type.Object(
  {
    token: Text({ minLength: 1, maxLength: 8192, description: 'A refresh token or an access token.' }),
    token_type_hint: Type.Optional(
      Text({ maxLength: 50, description: '`refresh_token` or `access_token`; a hint only.' })
    )
  },
  { examples: [{ token: 'bapi_rt_3q2-7wEXAMPLEexampleEXAMPLEexampleEXAMPLEex', token_type_hint: 'refresh_token' }] }
)

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
}, {
  description: 'The public keys that verify access tokens (RFC 7517), picked by `kid`.',
  examples: [
    {
      keys: [
        { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo', kid: '5c6f4b2a', alg: 'EdDSA', use: 'sig' }
      ]
    }
  ]
})
