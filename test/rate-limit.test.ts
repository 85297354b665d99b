// Per-address rate limits on the auth routes: past AUTH_RATE_LIMIT_MAX
// requests in a window, 429 with Retry-After and a problem body, for that
// address only. In memory for one instance, in Redis shared by several.
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { buildApp, fileDatabase, uniqueEmail } from './helper.js'
import { REDIS_SERVER, useRedis } from './redis.js'

const LIMITS = { AUTH_RATE_LIMIT_MAX: 3, AUTH_RATE_LIMIT_WINDOW: 60 }

void fileDatabase()

const tokenFrom = (app: FastifyInstance, remoteAddress: string) =>
  app.inject({
    method: 'POST',
    url: '/auth/token',
    remoteAddress,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ grant_type: 'password', username: 'someone@example.com', password: 'not it at all' }).toString()
  })

const signupFrom = (app: FastifyInstance, remoteAddress: string) =>
  app.inject({
    method: 'POST',
    url: '/auth/signup',
    remoteAddress,
    payload: { email: uniqueEmail(), full_name: 'Rate Limited', password: 'a perfectly fine passphrase' }
  })

function expectRateLimited(response: LightMyRequestResponse) {
  expect(response.statusCode).toBe(429)
  const retryAfter = Number(response.headers['retry-after'])
  expect(retryAfter).toBeGreaterThanOrEqual(1)
  expect(retryAfter).toBeLessThanOrEqual(60)
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/)
  expect(response.headers['x-ratelimit-limit']).toBe('3')
  expect(response.headers['x-ratelimit-remaining']).toBe('0')
  expect(response.json()).toEqual({
    type: 'about:blank',
    title: 'Too Many Requests',
    status: 429,
    detail: `Too many attempts. Try again in ${retryAfter} seconds.`
  })
}

describe('in memory (one instance)', () => {
  const context = {} as { app: FastifyInstance }
  beforeAll(async () => {
    context.app = await buildApp(LIMITS)
  })
  afterAll(async () => {
    await context.app?.close()
  })

  it('the token endpoint answers 429 with Retry-After past the limit, for that address only', async () => {
    for (let i = 0; i < 3; i++) {
      const response = await tokenFrom(context.app, '198.51.100.1')
      expect(response.statusCode).toBe(400)
      expect(response.headers['x-ratelimit-remaining']).toBe(String(2 - i))
    }
    expectRateLimited(await tokenFrom(context.app, '198.51.100.1'))
    expect((await tokenFrom(context.app, '198.51.100.2')).statusCode).toBe(400)
  })

  it('signup answers 429 with Retry-After past the limit, for that address only', async () => {
    for (let i = 0; i < 3; i++) expect((await signupFrom(context.app, '198.51.100.3')).statusCode).toBe(201)
    expectRateLimited(await signupFrom(context.app, '198.51.100.3'))
    expect((await signupFrom(context.app, '198.51.100.4')).statusCode).toBe(201)
  })

  it('routes without a limit are not limited', async () => {
    for (let i = 0; i < 5; i++) {
      const response = await context.app.inject({ method: 'GET', url: '/health', remoteAddress: '198.51.100.5' })
      expect(response.statusCode).toBe(200)
      expect(response.headers['x-ratelimit-limit']).toBeUndefined()
    }
  })
})

describe.skipIf(!REDIS_SERVER)('in Redis (shared by instances, REDIS_URL)', () => {
  const redis = useRedis()
  const context = {} as { app: FastifyInstance; other: FastifyInstance }
  beforeAll(async () => {
    context.app = await buildApp({ ...LIMITS, REDIS_URL: redis.url })
    context.other = await buildApp({ ...LIMITS, REDIS_URL: redis.url })
  })
  beforeEach(() => redis.flush())
  afterAll(async () => {
    await context.app?.close()
    await context.other?.close()
  })

  it('counts an address on every instance together', async () => {
    expect((await tokenFrom(context.app, '203.0.113.1')).statusCode).toBe(400)
    expect((await tokenFrom(context.other, '203.0.113.1')).statusCode).toBe(400)
    expect((await tokenFrom(context.app, '203.0.113.1')).statusCode).toBe(400)
    expectRateLimited(await tokenFrom(context.other, '203.0.113.1'))
    expectRateLimited(await tokenFrom(context.app, '203.0.113.1'))
    expect((await tokenFrom(context.other, '203.0.113.2')).statusCode).toBe(400)
  })

  it('limits signup through the shared store too', async () => {
    for (const app of [context.app, context.other, context.app]) expect((await signupFrom(app, '203.0.113.3')).statusCode).toBe(201)
    expectRateLimited(await signupFrom(context.other, '203.0.113.3'))
  })
})
