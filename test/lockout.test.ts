// Per-account throttling of failed password logins: after a few failures an
// email is locked out (429 + Retry-After, before the password is checked),
// for longer with each further failure; a success forgets the failures.
// The same behaviour in memory (one instance) and in Redis (several).
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Config } from '../src/config.js'
import { lockoutDelay } from '../src/lib/lockout-store.js'
import { buildApp, fileDatabase, PASSWORD, signup, tokenRequest, uniqueEmail, userWithToken } from './helper.js'
import { REDIS_SERVER, useRedis } from './redis.js'

const LOCKOUT: Partial<Config> = {
  LOGIN_LOCKOUT_THRESHOLD: 3,
  LOGIN_LOCKOUT_DELAY: 1,
  LOGIN_LOCKOUT_MAX_DELAY: 8,
  LOGIN_LOCKOUT_WINDOW: 60
}

const attempt = (app: FastifyInstance, email: string, password: string) =>
  tokenRequest(app, { grant_type: 'password', username: email, password })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function failTimes(app: FastifyInstance, email: string, times: number) {
  for (let i = 0; i < times; i++) {
    const response = await attempt(app, email, 'not the password at all')
    expect(response.statusCode).toBe(400)
    expect(response.json().error).toBe('invalid_grant')
  }
}

function expectLockedOut(response: LightMyRequestResponse, retryAfter: string) {
  expect(response.statusCode).toBe(429)
  expect(response.headers['retry-after']).toBe(retryAfter)
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/)
  expect(response.json()).toEqual({
    type: 'about:blank',
    title: 'Too Many Requests',
    status: 429,
    detail: `Too many attempts. Try again in ${retryAfter} second${retryAfter === '1' ? '' : 's'}.`
  })
}

void fileDatabase()

/** The behaviour every store must have; `apps()` gives the app(s) under test. */
function lockoutBehaviour(apps: () => { app: FastifyInstance; other: FastifyInstance }, sharedStore: boolean) {
  it('locks an email out after repeated failures: 429 with Retry-After even for the right password', async () => {
    const { app } = apps()
    const user = await signup(app)
    await failTimes(app, user.email, 3)
    expectLockedOut(await attempt(app, user.email, PASSWORD), '1')
    // The email is the key, whatever its case or spacing.
    expectLockedOut(await attempt(app, ` ${user.email.toUpperCase()} `, PASSWORD), '1')
    // Another account is not affected.
    const other = await signup(app)
    expect((await attempt(app, other.email, PASSWORD)).statusCode).toBe(200)
  })

  it('throttles an unknown email exactly like an existing one', async () => {
    const { app } = apps()
    const user = await signup(app)
    const unknown = uniqueEmail('nobody')
    await failTimes(app, user.email, 3)
    await failTimes(app, unknown, 3)
    const known = await attempt(app, user.email, 'not the password at all')
    const missing = await attempt(app, unknown, 'not the password at all')
    expectLockedOut(known, '1')
    expectLockedOut(missing, '1')
    expect(missing.body).toBe(known.body)
  })

  it('ends a lockout by itself, doubles it with each further failure, and forgets failures after a success', async () => {
    const { app } = apps()
    const growing = await signup(app)
    const recovering = await signup(app)
    await failTimes(app, growing.email, 3)
    await failTimes(app, recovering.email, 3)
    expectLockedOut(await attempt(app, growing.email, PASSWORD), '1')
    await sleep(1100)

    // After the first lockout one more failure locks for twice as long.
    await failTimes(app, growing.email, 1)
    expectLockedOut(await attempt(app, growing.email, PASSWORD), '2')

    // The right password after the lockout logs in, and the count starts again.
    expect((await attempt(app, recovering.email, PASSWORD)).statusCode).toBe(200)
    await failTimes(app, recovering.email, 2)
    expect((await attempt(app, recovering.email, PASSWORD)).statusCode).toBe(200)
  })

  it('lets no more than the threshold of attempts sent all at once through to a password check', async () => {
    const { app, other } = apps()
    const user = await signup(app)
    const burst = await Promise.all(
      Array.from({ length: 10 }, (_, i) => attempt(i % 2 === 0 ? app : other, user.email, `wrong guess number ${i}`))
    )
    const statuses = burst.map((response) => response.statusCode).sort()
    // The instances share the count in Redis; in memory each has its own threshold.
    const through = sharedStore ? 3 : 6
    expect(statuses).toEqual([...Array<number>(through).fill(400), ...Array<number>(10 - through).fill(429)])
  })

  it('counts wrong current passwords on a password change against the same lockout', async () => {
    const { app } = apps()
    const user = await userWithToken(app)
    for (let i = 0; i < 3; i++) {
      const response = await app.inject({
        method: 'PUT',
        url: '/users/me/password',
        headers: user.headers,
        payload: { current_password: 'not the password at all', new_password: 'a brand new passphrase' }
      })
      expect(response.statusCode).toBe(400)
    }
    const change = await app.inject({
      method: 'PUT',
      url: '/users/me/password',
      headers: user.headers,
      payload: { current_password: PASSWORD, new_password: 'a brand new passphrase' }
    })
    expectLockedOut(change, '1')
    expectLockedOut(await attempt(app, user.email, PASSWORD), '1')
  })
}

describe('in memory (one instance)', () => {
  const context = {} as { app: FastifyInstance; other: FastifyInstance }
  beforeAll(async () => {
    context.app = await buildApp(LOCKOUT)
    context.other = await buildApp(LOCKOUT)
  })
  afterAll(async () => {
    await context.app?.close()
    await context.other?.close()
  })

  lockoutBehaviour(() => context, false)

  it('keeps the counts of each instance to itself', async () => {
    const user = await signup(context.app)
    await failTimes(context.app, user.email, 3)
    expect((await attempt(context.app, user.email, PASSWORD)).statusCode).toBe(429)
    expect((await attempt(context.other, user.email, PASSWORD)).statusCode).toBe(200)
  })
})

describe.skipIf(!REDIS_SERVER)('in Redis (shared by instances, REDIS_URL)', () => {
  const redis = useRedis()
  const context = {} as { app: FastifyInstance; other: FastifyInstance }
  beforeAll(async () => {
    context.app = await buildApp({ ...LOCKOUT, REDIS_URL: redis.url })
    context.other = await buildApp({ ...LOCKOUT, REDIS_URL: redis.url })
  })
  afterAll(async () => {
    await context.app?.close()
    await context.other?.close()
  })

  lockoutBehaviour(() => context, true)

  it('locks an email out on every instance, whichever counted the failures', async () => {
    const user = await signup(context.app)
    await failTimes(context.app, user.email, 2)
    await failTimes(context.other, user.email, 1)
    expectLockedOut(await attempt(context.app, user.email, PASSWORD), '1')
    expectLockedOut(await attempt(context.other, user.email, PASSWORD), '1')
  })
})

describe.skipIf(!REDIS_SERVER)('while Redis is unreachable', () => {
  const redis = useRedis()
  const context = {} as { app: FastifyInstance }
  beforeAll(async () => {
    context.app = await buildApp({ ...LOCKOUT, AUTH_RATE_LIMIT_MAX: 100, REDIS_URL: redis.url })
  })
  afterAll(async () => {
    await context.app?.close()
  })

  it('refuses password logins with 503 and Retry-After, and serves refreshes uncounted', async () => {
    const user = await signup(context.app)
    const tokens = (await attempt(context.app, user.email, PASSWORD)).json()
    await redis.stop()

    const login = await attempt(context.app, user.email, PASSWORD)
    expect(login.statusCode).toBe(503)
    expect(login.headers['retry-after']).toBe('5')
    expect(login.json()).toMatchObject({ status: 503, title: 'Service Unavailable' })
    const refresh = await tokenRequest(context.app, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token })
    expect(refresh.statusCode).toBe(200)
  })
})

describe('the lockout schedule', () => {
  it('starts at the threshold, doubles, and stops at the cap', () => {
    const policy = { threshold: 5, baseDelayMs: 30_000, maxDelayMs: 900_000, windowMs: 900_000 }
    const delays = [1, 4, 5, 6, 7, 9, 10, 11, 500].map((failures) => lockoutDelay(failures, policy))
    expect(delays).toEqual([0, 0, 30_000, 60_000, 120_000, 480_000, 900_000, 900_000, 900_000])
  })
})
