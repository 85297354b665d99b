// Robustness against hostile input, on every route of the OpenAPI document
// (so a new route is covered without touching this file). Whatever is sent,
// the answer is never a 5xx, never carries a stack trace or a file path, and a
// refused request (4xx) leaves the database exactly as it was.
//
// The values come from each route's schemas (test/fuzz-values.ts): for every
// parameter and body field, the hostile values of its type — U+0000 and lone
// surrogates in text, other spellings of ids, cursors holding dates no
// database stores, the edges of numbers, bodies with tens of thousands of
// properties or nested thousands deep. Each is sent in an otherwise valid,
// authorized request, so that it reaches the code behind the schema: a value
// the schema lets through must be handled there.
//
// Two runs: the whole matrix (every route × field × hostile value, in order),
// and a seeded random run that mixes hostile values, mutated tokens, wrong
// content types and garbage headers. Set FUZZ_SEED to replay a random run;
// FUZZ_RUNS raises its length for a longer local session.
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { type Hostile, hostileObject, hostileValues, isId, literalsOf, percentEncode, type Schema, typeOf } from './fuzz-values.js'
import {
  adminWithToken,
  basicAuth,
  clientAddress,
  PASSWORD,
  serviceClient,
  tokenRequest,
  uniqueEmail,
  useApp,
  userWithToken
} from './helper.js'

const ctx = useApp()

const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31))
const RUNS = Number(process.env.FUZZ_RUNS ?? 300)

// Failed authentication attempts are recorded on purpose (the audit trail),
// so that table may change on a refused request; every other table may not.
const CHANGES_ON_REFUSAL = new Set(['audit_events'])

interface Parameter {
  name: string
  in: 'path' | 'query'
  schema: Schema
  required: boolean
}

interface Operation {
  method: string
  path: string
  parameters: Parameter[]
  body?: Schema
  contentTypes: string[]
  /** Whether the route wants a token (any security requirement other than none). */
  secured: boolean
}

interface OpenApiOperation {
  parameters?: Array<{ in: string; name: string; required?: boolean; schema?: Schema }>
  requestBody?: { content?: Record<string, { schema?: Schema }> }
  security?: Array<Record<string, string[]>>
}

/** Every operation of the OpenAPI document, with its parameters' and body's schemas. */
function operationsOf(document: { paths: Record<string, Record<string, OpenApiOperation>> }): Operation[] {
  return Object.entries(document.paths).flatMap(([path, operations]) =>
    Object.entries(operations).map(([method, operation]) => {
      const content = operation.requestBody?.content ?? {}
      return {
        method: method.toUpperCase(),
        path,
        parameters: (operation.parameters ?? [])
          .filter((parameter) => parameter.in === 'path' || parameter.in === 'query')
          .map((parameter) => ({
            name: parameter.name,
            in: parameter.in as 'path' | 'query',
            schema: parameter.schema ?? {},
            required: parameter.required === true || parameter.in === 'path'
          })),
        body: Object.values(content)[0]?.schema,
        contentTypes: Object.keys(content),
        secured: (operation.security ?? []).some((requirement) => Object.keys(requirement).length > 0)
      }
    })
  )
}

interface Fixtures {
  admin: { id: string; email: string; token: string }
  user: { id: string; email: string; token: string }
  client: { id: string; secret: string; token: string }
  postId: string
}

async function makeFixtures(fastify: FastifyInstance): Promise<Fixtures> {
  const admin = await adminWithToken(fastify)
  const user = await userWithToken(fastify)
  const client = await serviceClient(fastify, ['users:read', 'clients:manage'])
  const clientToken = (
    await tokenRequest(fastify, { grant_type: 'client_credentials' }, { authorization: basicAuth(client.clientId, client.clientSecret) })
  ).json<{ access_token: string }>().access_token
  // The admin's post: the admin may change it both as its author and as a moderator.
  const post = await fastify.inject({ method: 'POST', url: '/posts', headers: admin.headers, payload: { title: 'Fuzz', content: 'target' } })
  return {
    admin: { id: admin.id, email: admin.email, token: admin.tokens.access_token },
    user: { id: user.id, email: user.email, token: user.tokens.access_token },
    client: { id: client.clientId, secret: client.clientSecret, token: clientToken },
    postId: post.json<{ id: string }>().id
  }
}

/** Whether the fixtures still work (a request may have logged out, deleted or rotated one). */
async function fixturesIntact(fastify: FastifyInstance, fixtures: Fixtures): Promise<boolean> {
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
  const checks = await Promise.all([
    fastify.inject({ method: 'GET', url: `/users/${fixtures.admin.id}`, headers: bearer(fixtures.admin.token) }),
    fastify.inject({ method: 'GET', url: `/users/${fixtures.user.id}`, headers: bearer(fixtures.user.token) }),
    fastify.inject({ method: 'GET', url: '/clients?limit=1', headers: bearer(fixtures.client.token) }),
    fastify.inject({ method: 'GET', url: `/posts/${fixtures.postId}` })
  ])
  return checks.every((check) => check.statusCode === 200)
}

/** A valid value for a parameter or body field, so that the request reaches its handler. */
function validValue(operation: Operation, name: string, schema: Schema, fixtures: Fixtures): unknown {
  if (isId(schema)) {
    if (operation.path.startsWith('/posts/')) return fixtures.postId
    if (operation.path.startsWith('/clients/')) return fixtures.client.id
    return fixtures.user.id
  }
  const literals = literalsOf(schema)
  if (literals) return name === 'role' ? 'user' : literals[0]
  switch (name) {
    case 'email':
      return uniqueEmail('fuzz')
    case 'password':
    case 'current_password':
      return PASSWORD
    case 'new_password':
      return `a fresh passphrase ${Math.random()}`
    case 'grant_type':
      return 'password'
    case 'username':
      return fixtures.admin.email
    case 'scopes':
      return ['users:read']
    case 'token':
      return 'not a token this service issued'
    case 'code':
    case 'otp':
      return '123456'
  }
  switch (typeOf(schema)) {
    case 'integer':
    case 'number':
      return schema.default ?? schema.minimum ?? 1
    case 'boolean':
      return true
    case 'array':
      return []
    case 'object':
      return {}
    default:
      return 'Fuzz'
  }
}

/** A valid body: its required fields, and `field` when it is the one under test. */
function validBody(operation: Operation, fixtures: Fixtures, field?: string): Record<string, unknown> {
  const schema = operation.body ?? {}
  const properties = schema.properties ?? {}
  const names = new Set(schema.required ?? [])
  if (field) names.add(field)
  // A body that needs some property but names none as required (PATCH): its first one.
  if (names.size === 0 && (schema.minProperties ?? 0) > 0) names.add(Object.keys(properties)[0] ?? '')
  return Object.fromEntries([...names].filter(Boolean).map((name) => [name, validValue(operation, name, properties[name] ?? {}, fixtures)]))
}

interface FuzzRequest {
  method: string
  url: string
  headers: Record<string, string>
  payload?: string | Buffer
  /** What is hostile about it, for the failure message. */
  what: string
}

/** Which value of a request is hostile: a parameter, a body field, or the whole body (a value, or JSON text as is). */
interface HostilePart {
  parameter?: string
  field?: string
  value?: unknown
  body?: unknown
  rawBody?: string
}

/** Encodes parameter values into the path and query; anything not a string is sent as its JSON text. */
function urlOf(operation: Operation, values: Record<string, unknown>): string {
  const text = (value: unknown) => percentEncode(typeof value === 'string' ? value : String(JSON.stringify(value)))
  let path = operation.path
  const query: string[] = []
  for (const parameter of operation.parameters) {
    if (!(parameter.name in values)) continue
    const value = values[parameter.name]
    if (parameter.in === 'path') path = path.replace(`{${parameter.name}}`, text(value))
    else query.push(`${percentEncode(parameter.name)}=${text(value)}`)
  }
  return query.length ? `${path}?${query.join('&')}` : path
}

/** The request of `operation` with every value valid except those in `hostile`. */
function buildRequest(operation: Operation, fixtures: Fixtures, hostile: HostilePart, what: string): FuzzRequest {
  const values: Record<string, unknown> = {}
  for (const parameter of operation.parameters) {
    if (parameter.required) values[parameter.name] = validValue(operation, parameter.name, parameter.schema, fixtures)
  }
  if (hostile.parameter !== undefined) values[hostile.parameter] = hostile.value
  const headers: Record<string, string> = {}
  // The admin has every scope and is a user too: the request is authorized wherever it can be.
  if (operation.secured) headers.authorization = `Bearer ${fixtures.admin.token}`
  let payload: string | undefined
  if (operation.body) {
    const body = hostile.body ?? { ...validBody(operation, fixtures, hostile.field), ...(hostile.field ? { [hostile.field]: hostile.value } : {}) }
    headers['content-type'] = 'application/json'
    payload = hostile.rawBody ?? JSON.stringify(body)
  }
  return { method: operation.method, url: urlOf(operation, values), headers, payload, what }
}

/** Every hostile case of an operation: each parameter and field with each hostile value of its type, and the body as a whole. */
function hostileCases(operation: Operation, fixtures: Fixtures): Array<{ hostile: HostilePart; what: string }> {
  const cases: Array<{ hostile: HostilePart; what: string }> = []
  for (const parameter of operation.parameters) {
    for (const { label, value } of hostileValues(parameter.schema, parameter.name)) {
      cases.push({ hostile: { parameter: parameter.name, value }, what: `${parameter.in} ${parameter.name}: ${label}` })
    }
  }
  if (operation.body) {
    for (const [field, schema] of Object.entries(operation.body.properties ?? {})) {
      for (const { label, value } of hostileValues(schema, field)) cases.push({ hostile: { field, value }, what: `body ${field}: ${label}` })
    }
    for (const { label, value, raw } of hostileObject(validBody(operation, fixtures))) {
      cases.push({ hostile: raw === undefined ? { body: value } : { rawBody: raw }, what: `body: ${label}` })
    }
  }
  return cases
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

// Frames like "at fn (/path/file.ts:12:3)" and absolute source paths.
const STACK_TRACE = /\bat .+:\d+:\d+|(?:\/[\w.-]+)+\.(?:ts|js|mjs|cjs)\b|node_modules/

let operations: Operation[] = []
let fixtures: Fixtures

/**
 * Sends a request from an address of its own (the per-address limits stay at
 * their defaults) and checks the rules. A 429 (the account's write limit or a
 * lockout, which the matrix's many requests reach) is sent again once with
 * fresh accounts, so a limit never hides what comes behind it.
 */
async function send(build: () => FuzzRequest): Promise<LightMyRequestResponse> {
  let request = build()
  const mutating = request.method !== 'GET' && request.method !== 'HEAD'
  // The mail worker delivers what earlier requests queued, in the background: done before
  // the snapshot, so that what changes during the request is the request's doing.
  const settled = async () => {
    await ctx.app.mail.drain()
    return snapshot(ctx.app)
  }
  let before = mutating ? await settled() : undefined
  let response = await ctx.app.inject({ ...request, method: request.method as 'GET', remoteAddress: clientAddress() })
  if (response.statusCode === 429) {
    fixtures = await makeFixtures(ctx.app)
    request = build()
    before = mutating ? await settled() : undefined
    response = await ctx.app.inject({ ...request, method: request.method as 'GET', remoteAddress: clientAddress() })
  }
  const where = `${request.method} ${request.url.slice(0, 200)} (${request.what}) → ${response.statusCode} ${response.body.slice(0, 300)}`
  expect(response.statusCode, where).toBeLessThan(500)
  expect(response.body, where).not.toMatch(STACK_TRACE)
  if (before && response.statusCode >= 400) expect(await snapshot(ctx.app), where).toEqual(before)
  if (mutating && response.statusCode < 400 && !(await fixturesIntact(ctx.app, fixtures))) fixtures = await makeFixtures(ctx.app)
  return response
}

describe('fuzzing every route', () => {
  beforeAll(async () => {
    const document = (await ctx.app.inject({ method: 'GET', url: '/docs/json' })).json<Parameters<typeof operationsOf>[0]>()
    operations = operationsOf(document).filter((operation) => !operation.path.startsWith('/docs'))
    fixtures = await makeFixtures(ctx.app)
  })

  it('covers every route of the API, with the schemas of its parameters and body', () => {
    expect(operations.length).toBeGreaterThanOrEqual(24)
    const patch = operations.find((operation) => operation.method === 'PATCH' && operation.path === '/posts/{id}')
    expect(patch?.parameters.map((parameter) => parameter.name)).toEqual(['id'])
    expect(Object.keys(patch?.body?.properties ?? {})).toEqual(['title', 'content'])
  })

  it('refuses every hostile value of every field of every route with a 4xx, and changes nothing', async () => {
    let sent = 0
    for (const operation of operations) {
      for (const { hostile, what } of hostileCases(operation, fixtures)) {
        // Built when sent: an earlier request may have replaced the fixtures.
        await send(() => buildRequest(operation, fixtures, hostile, what))
        sent++
      }
    }
    expect(sent).toBeGreaterThan(500)
  }, 240_000)

  it('answers seeded random requests — hostile values, mutated tokens, wrong content types — without a 5xx', async () => {
    await fc
      .assert(
        fc.asyncProperty(fc.constant(null).chain(() => randomRequest()), async (build) => {
          await send(build)
        }),
        { seed: SEED, numRuns: RUNS, endOnFailure: true }
      )
      .catch((error: unknown) => {
        // fast-check's report carries the seed and path; say how to replay.
        throw new Error(`Replay with FUZZ_SEED=${SEED}\n${(error as Error).message}`, { cause: error })
      })
  }, 180_000)
})

// ------------------------------------------------------------ random requests

/** A valid token, changed a little: one character replaced, cut short, extended, or its algorithm set to none. */
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

/** Text with the characters that break things mixed in. */
const hostileString = fc
  .tuple(fc.string({ maxLength: 30 }), fc.constantFrom('\u0000', '\uD800', '\uDFFF', '\uDE00\uD83D', '\u202E', '\uFFFF', ''), fc.string({ maxLength: 30 }))
  .map(([before, middle, after]) => before + middle + after)

const garbage = fc.oneof(
  hostileString,
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', ' ', '%', '%FF', '%C3%28', '../../etc/passwd', "' OR 1=1 --", 'null', '-1', '1e309', 'a'.repeat(300))
)

/** A request to a random route: hostile values in random fields, random headers, sometimes a form or garbage body. */
function randomRequest(): fc.Arbitrary<() => FuzzRequest> {
  return fc.constantFrom(...operations).chain((operation) => {
    const fields = Object.entries(operation.body?.properties ?? {})
    const targets: Array<{ kind: 'parameter' | 'field'; name: string; schema: Schema }> = [
      ...operation.parameters.map((parameter) => ({ kind: 'parameter' as const, name: parameter.name, schema: parameter.schema })),
      ...fields.map(([name, schema]) => ({ kind: 'field' as const, name, schema }))
    ]
    const hostilePart = targets.length
      ? fc.constantFrom(...targets).chain((target) =>
          fc.record({
            target: fc.constant(target),
            value: fc.oneof(fc.constantFrom(...hostileValues(target.schema, target.name)).map((hostile: Hostile) => hostile.value), hostileString, fc.jsonValue({ maxDepth: 2 }))
          })
        )
      : fc.constant(undefined)
    return fc
      .record({
        hostile: hostilePart,
        extra: fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.jsonValue({ maxDepth: 2 }), garbage), { maxKeys: 3 }),
        token: fc.oneof(fc.constant('valid'), fc.constant('none'), fc.constant('mutated'), fc.constant('garbage')),
        mutation: fc.nat(),
        garbageHeader: garbage,
        contentType: fc.oneof(
          fc.constantFrom(
            'application/json',
            'application/x-www-form-urlencoded',
            'application/json; charset=utf-16',
            'text/plain',
            'multipart/form-data',
            'application/problem+json'
          ),
          garbage
        ),
        bodyShape: fc.constantFrom('json', 'form', 'truncated', 'bytes')
      })
      .map((choice) => () => {
        const request = buildRequest(
          operation,
          fixtures,
          choice.hostile?.target.kind === 'parameter'
            ? { parameter: choice.hostile.target.name, value: choice.hostile.value }
            : choice.hostile
              ? { field: choice.hostile.target.name, value: choice.hostile.value }
              : {},
          `random: ${choice.hostile?.target.name ?? 'no field'}`
        )
        const valid = request.headers.authorization?.slice('Bearer '.length) ?? fixtures.user.token
        if (choice.token === 'none') delete request.headers.authorization
        if (choice.token === 'mutated') {
          const mutated = fc.sample(mutatedToken(valid), { seed: choice.mutation, numRuns: 1 })[0] ?? valid
          request.headers.authorization = `Bearer ${mutated}`
        }
        if (choice.token === 'garbage') request.headers.authorization = choice.garbageHeader
        request.headers['if-match'] = choice.garbageHeader
        if (request.payload !== undefined || choice.bodyShape === 'bytes') {
          const body = { ...(JSON.parse(typeof request.payload === 'string' ? request.payload : '{}') as Record<string, unknown>), ...choice.extra }
          request.headers['content-type'] = choice.contentType
          request.payload =
            choice.bodyShape === 'form'
              ? new URLSearchParams(Object.entries(body).map(([k, v]): [string, string] => [k, typeof v === 'string' ? v : JSON.stringify(v)])).toString()
              : choice.bodyShape === 'truncated'
                ? JSON.stringify(body).slice(0, -1)
                : choice.bodyShape === 'bytes'
                  ? Buffer.from(choice.garbageHeader, 'latin1')
                  : JSON.stringify(body)
        }
        return request
      })
  })
}
