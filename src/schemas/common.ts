// Small shared schema atoms, composed into the request and response schemas
// of every route. TypeScript types come from these with `Static<>`.
import { STATUS_CODES } from 'node:http'
import { Type, type Static, type StringOptions, type TSchema } from '@sinclair/typebox'

/**
 * Text as PostgreSQL and UTF-8 can hold it: no U+0000 (PostgreSQL's text
 * refuses it) and no lone surrogate (UTF-8 cannot encode one; it would be
 * stored as U+FFFD, a silently altered value). Every string a client sends
 * is one of these, an id, an email, or a pattern of its own that excludes both.
 */
export const TEXT_PATTERN = '^[^\\u0000\\uD800-\\uDFFF]*$'
export const Text = (options: StringOptions = {}) => Type.String({ ...options, pattern: TEXT_PATTERN })

/**
 * An id exactly as the service writes it: a UUID in its plain 8-4-4-4-12
 * spelling. The JSON Schema `uuid` format also admits `urn:uuid:…`, which
 * PostgreSQL does not; braces and undashed forms are refused as well.
 */
export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
export const IdOf = (description: string) => Type.String({ format: 'uuid', pattern: UUID_PATTERN, description })
export const Id = IdOf('An opaque identifier (UUID).')
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
    errors: Type.Optional(Type.Array(FieldError, { description: 'For invalid requests (400): what is wrong with which field.' }))
  },
  { $id: 'Problem', description: 'RFC 9457 problem details (application/problem+json).' }
)

/** Response headers, as the OpenAPI document shows them. */
export type HeaderDocs = Record<string, { type: 'string' | 'integer'; description: string }>

/**
 * A `$ref` to a shared schema (added with `fastify.addSchema`), typed as that
 * schema, with the response's description and the schema's own examples.
 */
export function refTo<T extends TSchema & { $id?: string }>(
  schema: T,
  description?: string,
  options: { headers?: HeaderDocs } = {}
) {
  if (!schema.$id) throw new Error('refTo needs a schema with an $id')
  return Type.Unsafe<Static<T>>(
    Type.Ref(schema.$id, {
      ...(description ? { description } : {}),
      ...(schema.examples ? { examples: schema.examples as unknown[] } : {}),
      ...options
    })
  )
}

export type ProblemDto = Static<typeof Problem>
type FieldErrorDto = Static<typeof FieldError>

// Headers that come with some problems.
const PROBLEM_HEADERS: Record<string, HeaderDocs> = {
  401: { 'WWW-Authenticate': { type: 'string', description: 'RFC 6750 Bearer challenge (RFC 6749 Basic on the token endpoint).' } },
  403: { 'WWW-Authenticate': { type: 'string', description: 'With `error="insufficient_scope"` when a scope is missing.' } },
  429: { 'Retry-After': { type: 'integer', description: 'Seconds to wait before trying again.' } },
  503: { 'Retry-After': { type: 'integer', description: 'Seconds to wait before trying again.' } }
}

/** A plausible field error for a 400 described as being about an id, a query or a body. */
function exampleFieldError(description: string): FieldErrorDto {
  if (/\bid\b/i.test(description)) return { field: 'id', message: 'must match format "uuid"' }
  if (/query/i.test(description)) return { field: 'limit', message: 'must be <= 100' }
  return { field: 'body', message: 'must be object' }
}

/** One problem response for the docs: its description, an example body and its headers. */
function problemResponse(status: string, description: string) {
  const code = status === 'default' ? 500 : Number(status)
  const example: ProblemDto = {
    type: 'about:blank',
    title: STATUS_CODES[code] ?? 'Error',
    status: code,
    detail: status === 'default' ? 'An unexpected error occurred.' : description.replace(/\.?$/, '.')
  }
  if (code === 400) {
    example.detail = 'The request is not valid.'
    example.errors = [exampleFieldError(description)]
  }
  return Type.Unsafe<ProblemDto>({
    description,
    ...(PROBLEM_HEADERS[status] ? { headers: PROBLEM_HEADERS[status] } : {}),
    content: { 'application/problem+json': { schema: Type.Ref('Problem'), example } }
  })
}

/** What every route may answer besides what it lists: a 5xx problem. */
export const UNEXPECTED =
  'Any other error: unexpected (500, without internal details), the database unavailable (503, with `Retry-After`), or a request the route cannot read (413 too large, 415 wrong content type).'

/**
 * Maps status codes to problem responses (`application/problem+json`), with a
 * description and an example for the docs, plus the `default` 5xx response
 * that every route can give.
 */
export function problems(descriptions: Record<number, string>): Record<string, TSchema> {
  return Object.fromEntries(
    [...Object.entries(descriptions), ['default', UNEXPECTED] as const].map(([status, description]) => [
      status,
      problemResponse(status, description)
    ])
  )
}

export const Limit = Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Page size, 1 to 100.' })
export const Cursor = Type.String({
  minLength: 1,
  maxLength: 200,
  pattern: '^[A-Za-z0-9_-]+$',
  description: 'The `next_cursor` of the previous page.'
})

const EXAMPLE_CURSOR = 'MjAyNi0wMS0xNVQwOTozMDowMC4wMDBafDZmMWMyZDNlLTRiNWEtNGM2ZC04ZTdmLTlhMGIxYzJkM2U0Zg'

/** A page of items, newest or oldest first; described and exemplified from the item's schema. */
export function Page<T extends TSchema>(item: T, description: string) {
  const example = (item.examples as unknown[] | undefined)?.[0]
  return Type.Object(
    {
      data: Type.Array(item),
      next_cursor: Type.Union([Type.String(), Type.Null()], {
        description: 'Pass as `cursor` for the next page; null on the last page.'
      })
    },
    { description, ...(example ? { examples: [{ data: [example], next_cursor: EXAMPLE_CURSOR }] } : {}) }
  )
}

/** An answer without a body (204, 304), with what it means. */
export const NoContent = (description: string) => Type.Unsafe<undefined>({ type: 'null', description })
