// Service clients of the client-credentials grant.
import { Type } from '@sinclair/typebox'
import { CLIENT_SCOPES } from '../lib/scopes.js'
import { Id, Text, Timestamp } from './common.js'

/** Scopes a service client may be granted; `posts:write` needs a user behind it. */
export const ClientScope = Type.Union(CLIENT_SCOPES.map((scope) => Type.Literal(scope)))

export const CreateClientBody = Type.Object(
  {
    name: Text({ minLength: 1, maxLength: 100, examples: ['billing-service'] }),
    scopes: Type.Array(ClientScope, { maxItems: CLIENT_SCOPES.length, uniqueItems: true })
  },
  { additionalProperties: false, examples: [{ name: 'billing-service', scopes: ['users:read'] }] }
)

const clientExample = {
  client_id: '3f0c9a1e-7d2b-4c5a-8e6f-1a2b3c4d5e6f',
  name: 'billing-service',
  scopes: ['users:read'],
  created_at: '2026-01-15T11:00:00.000Z'
}

export const Client = Type.Object(
  { client_id: Id, name: Type.String(), scopes: Type.Array(Type.String()), created_at: Timestamp },
  { $id: 'Client', description: 'A service client; its secret is never shown again.', examples: [clientExample] }
)

export const ClientWithSecret = Type.Object(
  {
    client_id: Id,
    client_secret: Type.String({ description: 'Shown only once.' }),
    name: Type.String(),
    scopes: Type.Array(Type.String()),
    created_at: Timestamp
  },
  { examples: [{ ...clientExample, client_secret: 'bapi_cs_Q2hhbmdlIG1lOiBJIGFtIGFuIGV4YW1wbGUgc2VjcmV0' }] }
)
