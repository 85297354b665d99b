// Small shared schema atoms, composed into the request and response schemas
// of every route. TypeScript types come from these with `Static<>`.
import { Type, type Static, type TSchema } from '@sinclair/typebox'

export const Id = Type.String({ format: 'uuid', description: 'An opaque identifier (UUID).' })
export const IdParams = Type.Object({ id: Id })

export const Email = Type.String({ format: 'email', minLength: 3, maxLength: 254, examples: ['ada@example.com'] })
export const Timestamp = Type.String({ format: 'date-time' })
/** Space-separated scopes (RFC 6749 §3.3), or empty: the scopes the holder may have. */
export const Scope = Type.String({
  maxLength: 500,
  pattern: '^([\\x21\\x23-\\x5B\\x5D-\\x7E]+( [\\x21\\x23-\\x5B\\x5D-\\x7E]+)*)?$',
  description: 'Space-separated scopes (RFC 6749 §3.3). Empty or absent: every scope the holder may have.',
  examples: ['posts:write']
})

export const FieldError = Type.Object({ field: Type.String(), message: Type.String() })

/** RFC 9457 problem details, the body of every error outside the token endpoint. */
export const Problem = Type.Object(
  {
    type: Type.String({ examples: ['about:blank'] }),
    title: Type.String({ examples: ['Not Found'] }),
    status: Type.Integer({ examples: [404] }),
    detail: Type.String({ examples: ['Post not found.'] }),
    errors: Type.Optional(Type.Array(FieldError))
  },
  { $id: 'Problem', description: 'RFC 9457 problem details (application/problem+json).' }
)

/** A `$ref` to a shared schema (added with `fastify.addSchema`), typed as that schema. */
export function refTo<T extends TSchema & { $id?: string }>(schema: T, description?: string) {
  if (!schema.$id) throw new Error('refTo needs a schema with an $id')
  return Type.Unsafe<Static<T>>(Type.Ref(schema.$id, description ? { description } : {}))
}

/** Maps status codes to problem responses, with a description for the docs. */
export function problems(descriptions: Record<number, string>): Record<number, TSchema> {
  return Object.fromEntries(
    Object.entries(descriptions).map(([status, description]) => [status, Type.Ref('Problem', { description })])
  )
}

export const Limit = Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Page size, 1 to 100.' })
export const Cursor = Type.String({
  minLength: 1,
  maxLength: 200,
  pattern: '^[A-Za-z0-9_-]+$',
  description: 'The `next_cursor` of the previous page.'
})

export function Page<T extends TSchema>(item: T) {
  return Type.Object({
    data: Type.Array(item),
    next_cursor: Type.Union([Type.String(), Type.Null()], {
      description: 'Pass as `cursor` for the next page; null on the last page.'
    })
  })
}

export const NoContent = Type.Unsafe<undefined>({ type: 'null', description: 'No content.' })
