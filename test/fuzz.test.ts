// Property-based robustness: generated and mutated requests against every
// route of the OpenAPI document (so a new route is covered without touching
// this file). Whatever is sent, the answer is never a 5xx, never carries a
// stack trace or a file path, and a refused request (4xx) leaves the database
// exactly as it was.
//
// Seeded: set FUZZ_SEED to replay a run; a failure prints its seed and path.
// FUZZ_RUNS raises the number of requests for a longer local session.
import type { FastifyInstance } from 'fastify'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { adminWithToken, serviceClient, tokenRequest, userWithToken, useApp } from './helper.js'

const ctx = useApp()

const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31))
const RUNS = Number(process.env.FUZZ_RUNS ?? 300)

// Failed authentication attempts are recorded on purpose (the audit trail),
// so that table may change on a refused request; every other table may not.
const CHANGES_ON_REFUSAL = new Set(['audit_events'])

interface Route {
  method: string
  path: string
  queryNames: string[]
  bodyNames: string[]
}

interface Fixtures {
  tokens: string[]
  ids: string[]
}

let routes: Route[] = []
let fixtures: Fixtures

interface OpenApiOperation {
  parameters?: Array<{ in: string; name: string }>
  requestBody?: { content?: Record<string, { schema?: { properties?: Record<string, unknown> } }> }
}

/** Every route of the OpenAPI document, with the names its query and body know. */
function routesOf(document: { paths: Record<string, Record<string, OpenApiOperation>> }): Route[] {
  return Object.entries(document.paths).flatMap(([path, operations]) =>
    Object.entries(operations).map(([method, operation]) => ({
      method: method.toUpperCase(),
      path,
      queryNames: (operation.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name),
      bodyNames: Object.values(operation.requestBody?.content ?? {}).flatMap((c) => Object.keys(c.schema?.properties ?? {}))
    }))
  )
}

async function makeFixtures(fastify: FastifyInstance): Promise<Fixtures> {
  const user = await userWithToken(fastify)
  const admin = await adminWithToken(fastify)
  const client = await serviceClient(fastify, ['users:read', 'clients:manage'])
  const clientToken = (await tokenRequest(fastify, { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret })).json<{ access_token: string }>().access_token
  const post = await fastify.inject({ method: 'POST', url: '/posts', headers: user.headers, payload: { title: 'Fuzz', content: 'target' } })
  return {
    tokens: [user.tokens.access_token, admin.tokens.access_token, clientToken],
    ids: [user.id, admin.id, client.clientId, post.json<{ id: string }>().id]
  }
}

/** One checksum per table, over every row. */
async function snapshot(fastify: FastifyInstance): Promise<Record<string, string>> {
  const tables = await fastify.prisma.$queryRaw<Array<{ tablename: string }>>`
    SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> '_prisma_migrations'`
  const result: Record<string, string> = {}
  for (const { tablename } of tables) {
    if (CHANGES_ON_REFUSAL.has(tablename)) continue
    const [row] = await fastify.prisma.$queryRawUnsafe<Array<{ sum: string }>>(
      `SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') AS sum FROM "${tablename.replace(/"/g, '')}" t`
    )
    result[tablename] = row?.sum ?? ''
  }
  return result
}

/** A valid token, changed a little: one character replaced, cut short, or extended. */
const mutatedToken = (token: string) =>
  fc.oneof(
    fc.tuple(fc.nat({ max: token.length - 1 }), fc.constantFrom('A', '_', '-', '.', '=', ' ', '%', 'é')).map(
      ([at, c]) => token.slice(0, at) + c + token.slice(at + 1)
    ),
    fc.nat({ max: token.length - 1 }).map((at) => token.slice(0, at)),
    fc.string({ maxLength: 20 }).map((extra) => token + extra),
    fc.constant(token.split('.').slice(0, 2).join('.') + '.'),
    fc.constant(token.replace(/^[^.]+/, Buffer.from('{"alg":"none","typ":"at+jwt"}').toString('base64url')))
  )

const garbage = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', ' ', '%', '%FF', '%C3%28', '../../etc/passwd', "' OR 1=1 --", '\u0000', 'null', '-1', '1e309', 'a'.repeat(300))
)

function headerArb(tokens: string[]) {
  const validToken = fc.constantFrom(...tokens)
  const authorization = fc.oneof(
    fc.constant(undefined),
    validToken.map((t) => `Bearer ${t}`),
    validToken.chain(mutatedToken).map((t) => `Bearer ${t}`),
    garbage.map((g) => `Bearer ${g}`),
    garbage.map((g) => `Basic ${Buffer.from(g).toString('base64')}`),
    garbage
  )
  const contentType = fc.oneof(
    fc.constantFrom(
      'application/json',
      'application/x-www-form-urlencoded',
      'application/json; charset=utf-16',
      'text/plain',
      'multipart/form-data',
      'application/problem+json'
    ),
    garbage
  )
  return fc.record(
    {
      authorization,
      'content-type': contentType,
      'if-match': garbage,
      'if-none-match': garbage,
      accept: garbage,
      'x-forwarded-for': garbage
    },
    { requiredKeys: [] }
  )
}

function bodyArb(route: Route) {
  const names = route.bodyNames.length > 0 ? fc.constantFrom(...route.bodyNames) : fc.string({ maxLength: 12 })
  const anyValue = fc.oneof(fc.jsonValue({ maxDepth: 2 }), garbage)
  // Plausible: the route's own field names with values of any kind, and sometimes an extra field.
  const plausible = fc.dictionary(fc.oneof(names, names, fc.string({ maxLength: 8 })), anyValue, { maxKeys: 6 })
  return fc.oneof(
    fc.constant(undefined),
    plausible.map((value) => JSON.stringify(value)),
    plausible.map((value) =>
      new URLSearchParams(Object.entries(value).map(([k, v]): [string, string] => [k, typeof v === 'string' ? v : JSON.stringify(v)])).toString()
    ),
    fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)),
    fc.string({ maxLength: 200 }),
    fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
    plausible.map((value) => JSON.stringify(value).slice(0, -1))
  )
}

function pathArb(route: Route, ids: string[]) {
  const param = fc.oneof(
    fc.constantFrom(...ids),
    fc.uuid(),
    garbage.map((g) => encodeURIComponent(g)),
    fc.constantFrom('%FF', '%', '..', '%2F', 'a'.repeat(250))
  )
  const segments = route.path.split(/(\{[^}]+\})/)
  return fc.tuple(...segments.map((segment) => (segment.startsWith('{') ? param : fc.constant(segment)))).map((parts) => parts.join(''))
}

function queryArb(route: Route) {
  const names = route.queryNames.length > 0 ? fc.constantFrom(...route.queryNames) : fc.string({ maxLength: 8 })
  return fc.oneof(
    fc.constant(''),
    fc.dictionary(fc.oneof(names, fc.string({ maxLength: 8 })), garbage, { maxKeys: 4 }).map((q) => new URLSearchParams(q).toString()),
    fc.constantFrom('limit=0', 'limit=101', 'limit=abc', 'cursor=%FF', 'limit=1&limit=2', 'author_id[]=x', '%', '&&==')
  )
}

function requestArb(fixtures: Fixtures) {
  return fc.constantFrom(...routes).chain((route) =>
    fc.record({
      method: fc.constant(route.method),
      path: pathArb(route, fixtures.ids),
      query: queryArb(route),
      headers: headerArb(fixtures.tokens),
      body: route.method === 'GET' || route.method === 'DELETE' ? fc.oneof(fc.constant(undefined), bodyArb(route)) : bodyArb(route)
    })
  )
}

// Frames like "at fn (/path/file.ts:12:3)" and absolute source paths.
const STACK_TRACE = /\bat .+:\d+:\d+|(?:\/[\w.-]+)+\.(?:ts|js|mjs|cjs)\b|node_modules/

describe('fuzzing every route', () => {
  beforeAll(async () => {
    const document = (await ctx.app.inject({ method: 'GET', url: '/docs/json' })).json<Parameters<typeof routesOf>[0]>()
    routes = routesOf(document).filter((route) => !route.path.startsWith('/docs'))
    fixtures = await makeFixtures(ctx.app)
  })

  it('covers every route of the API', () => {
    expect(routes.length).toBeGreaterThanOrEqual(24)
    expect(routes.map((r) => `${r.method} ${r.path}`)).toContain('PATCH /posts/{id}')
  })

  it('answers generated and mutated requests without a 5xx or a stack trace, and refusals change nothing', async () => {
    // Tokens the fuzzer may end (logout, delete me, revoke) are made again when that happens.
    await fc.assert(
      fc.asyncProperty(fc.constant(null).chain(() => requestArb(fixtures)), async (request) => {
        const before = await snapshot(ctx.app)
        const headers = Object.fromEntries(Object.entries(request.headers).filter(([, v]) => v !== undefined)) as Record<string, string>
        const response = await ctx.app.inject({
          method: request.method as 'GET',
          url: request.path + (request.query ? `?${request.query}` : ''),
          headers,
          ...(request.body !== undefined ? { payload: request.body } : {})
        })
        const where = `${request.method} ${request.path}?${request.query} → ${response.statusCode} ${response.body.slice(0, 300)}`
        expect(response.statusCode, where).toBeLessThan(500)
        expect(response.body, where).not.toMatch(STACK_TRACE)
        if (response.statusCode >= 400) {
          expect(await snapshot(ctx.app), where).toEqual(before)
        } else if (request.method !== 'GET') {
          fixtures = await makeFixtures(ctx.app)
        }
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true }
    ).catch((error: unknown) => {
      // fast-check's report carries the seed and path; say how to replay.
      throw new Error(`Replay with FUZZ_SEED=${SEED}\n${(error as Error).message}`, { cause: error })
    })
  }, 120_000)
})
