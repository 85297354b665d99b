// Service clients of the client-credentials grant.
import { Type } from '@sinclair/typebox'
import { Id, Timestamp } from './common.js'

/** Scopes a service client may be granted; `posts:write` needs a user behind it. */
export const ClientScope = Type.Union([
  Type.Literal('users:read'),
  Type.Literal('users:write'),
  Type.Literal('clients:manage')
])

export const CreateClientBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100, examples: ['billing-service'] }),
    scopes: Type.Array(ClientScope, { maxItems: 3, uniqueItems: true, examples: [['users:read']] })
  },
  { additionalProperties: false }
)

export const Client = Type.Object(
  { client_id: Id, name: Type.String(), scopes: Type.Array(Type.String()), created_at: Timestamp },
  { $id: 'Client' }
)

export const ClientWithSecret = Type.Object({
  client_id: Id,
  client_secret: Type.String({ description: 'Shown only once.' }),
  name: Type.String(),
  scopes: Type.Array(Type.String()),
  created_at: Timestamp
})
