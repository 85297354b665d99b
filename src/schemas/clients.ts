// OAuth clients: services (client credentials) and apps users sign in to
// (authorization code with PKCE), confidential or public.
import { Type } from '@sinclair/typebox'
import { GRANT_TYPES } from '../oauth/clients.js'
import { SCOPES } from '../lib/scopes.js'
import { Id, Text, Timestamp } from './common.js'

const SCOPE_NAMES = Object.keys(SCOPES)

export const ClientScope = Type.Union(SCOPE_NAMES.map((scope) => Type.Literal(scope)))
export const GrantType = Type.Union(GRANT_TYPES.map((grant) => Type.Literal(grant)))
const Uri = Text({ minLength: 1, maxLength: 2000 })
const Uris = (description: string) => Type.Array(Uri, { maxItems: 10, uniqueItems: true, description })

export const CreateClientBody = Type.Object(
  {
    name: Text({ minLength: 1, maxLength: 100, examples: ['billing-service'] }),
    scopes: Type.Array(ClientScope, {
      maxItems: SCOPE_NAMES.length,
      uniqueItems: true,
      description:
        'For client credentials: the scopes the client holds (administrative ones only). For apps users sign in to: what it may ask them for. You can grant only scopes your own token carries (`openid`, `profile` and `email` excepted).'
    }),
    grant_types: Type.Optional(
      Type.Array(GrantType, {
        minItems: 1,
        uniqueItems: true,
        description:
          'Default `["client_credentials"]`, or `["authorization_code", "refresh_token"]` for a public client. `password` is for first-party clients only.'
      })
    ),
    redirect_uris: Type.Optional(
      Uris('Where users are sent back with a code, matched exactly: https, http to localhost, or a reverse-domain custom scheme (`com.example.app:/callback`).')
    ),
    post_logout_redirect_uris: Type.Optional(Uris('Where `GET /oauth/logout` may send users afterwards, matched exactly.')),
    public: Type.Optional(Type.Boolean({ description: 'A browser or mobile app: no secret; authorization_code with PKCE and refresh_token only.' })),
    first_party: Type.Optional(
      Type.Boolean({ description: "The service's own app: users are not asked to consent. Needs every administrative scope." })
    )
  },
  {
    additionalProperties: false,
    examples: [
      { name: 'billing-service', scopes: ['users:read'] },
      {
        name: 'Acme web app',
        scopes: ['openid', 'profile', 'email', 'posts:write'],
        grant_types: ['authorization_code', 'refresh_token'],
        redirect_uris: ['https://app.example.com/callback'],
        public: true
      }
    ]
  }
)

const clientExample = {
  client_id: '3f0c9a1e-7d2b-4c5a-8e6f-1a2b3c4d5e6f',
  name: 'billing-service',
  scopes: ['users:read'],
  grant_types: ['client_credentials'],
  redirect_uris: [],
  post_logout_redirect_uris: [],
  public: false,
  first_party: false,
  created_at: '2026-01-15T11:00:00.000Z'
}

const clientProperties = {
  client_id: Id,
  name: Type.String(),
  scopes: Type.Array(Type.String()),
  grant_types: Type.Array(Type.String()),
  redirect_uris: Type.Array(Type.String()),
  post_logout_redirect_uris: Type.Array(Type.String()),
  public: Type.Boolean(),
  first_party: Type.Boolean(),
  created_at: Timestamp
}

export const Client = Type.Object(clientProperties, {
  $id: 'Client',
  description: 'An OAuth client; its secret is never shown again.',
  examples: [clientExample]
})

export const ClientWithSecret = Type.Object(
  { ...clientProperties, client_secret: Type.Optional(Type.String({ description: 'Shown only once; public clients have none.' })) },
  { examples: [{ ...clientExample, client_secret: 'bapi_cs_Q2hhbmdlIG1lOiBJIGFtIGFuIGV4YW1wbGUgc2VjcmV0' }] }
)
