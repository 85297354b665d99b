// Throttling of password guesses (src/plugins/app/login-throttle.ts): an
// account is locked out from an address after a few failures (429 with
// Retry-After, before any password is checked), for longer with each further
// failure; untrusted devices from everywhere together are locked after more;
// a device where the owner signed in stays trusted. Re-authentication inside a
// session is throttled apart, per account. The same behaviour in memory (one
// instance) and in Redis (several).
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Config } from '../src/config.js'
import { lockoutDelay } from '../src/lib/lockout-store.js'
import { bearer, buildApp, clientAddress, fileDatabase, PASSWORD, signup, tokenRequest, uniqueEmail, useApp, userWithToken } from './helper.js'
import { REDIS_SERVER, useRedis } from './redis.js'

const LOCKOUT: Partial<Config> = {
  LOGIN_LOCKOUT_THRESHOLD: 3,
  LOGIN_LOCKOUT_ACCOUNT_THRESHOLD: 6,
  LOGIN_LOCKOUT_DELAY: 1,
  LOGIN_LOCKOUT_MAX_DELAY: 8,
  LOGIN_LOCKOUT_WINDOW: 60
}

/** A password login from `address`, with the device cookies in `cookies`. */
const attempt = (app: FastifyInstance, email: string, password: string, address: string, cookies: Record<string, string> = {}) =>
  app.inject({
    method: 'POST',
    url: '/auth/token',
    remoteAddress: address,
    cookies,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ grant_type: 'password', username: email, password }).toString()
  })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function failTimes(app: FastifyInstance, email: string, times: number, address: string) {
  for (let i = 0; i < times; i++) {
    const response = await attempt(app, email, 'not the password at all', address)
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

/** The device cookie a successful login set, as a cookie jar for the next request. */
function deviceCookie(response: LightMyRequestResponse): Record<string, string> {
  const cookie = response.cookies.find((candidate) => candidate.name.startsWith('bapi_device_'))
  expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' })
  return { [cookie?.name ?? '']: cookie?.value ?? '' }
}

const changePassword = (app: FastifyInstance, accessToken: string, current: string, next = 'a brand new passphrase') =>
  app.inject({
    method: 'PUT',
    url: '/users/me/password',
    headers: bearer(accessToken),
    payload: { current_password: current, new_password: next }
  })

void fileDatabase()

/** The behaviour every store must have; `apps()` gives the app(s) under test. */
function lockoutBehaviour(apps: () => { app: FastifyInstance; other: FastifyInstance }, sharedStore: boolean) {
  it('locks an account out from an address after repeated failures: 429 with Retry-After even for the right password', async () => {
    const { app } = apps()
    const home = clientAddress()
    const user = await signup(app)
    await failTimes(app, user.email, 3, home)
    expectLockedOut(await attempt(app, user.email, PASSWORD, home), '1')
    // The email is the key, whatever its case or spacing.
    expectLockedOut(await attempt(app, ` ${user.email.toUpperCase()} `, PASSWORD, home), '1')
    // Another account is not affected.
    const other = await signup(app)
    expect((await attempt(app, other.email, PASSWORD, home)).statusCode).toBe(200)
  })

  it('throttles an unknown email exactly like an existing one', async () => {
    const { app } = apps()
    const home = clientAddress()
    const user = await signup(app)
    const unknown = uniqueEmail('nobody')
    await failTimes(app, user.email, 3, home)
    await failTimes(app, unknown, 3, home)
    const known = await attempt(app, user.email, 'not the password at all', home)
    const missing = await attempt(app, unknown, 'not the password at all', home)
    expectLockedOut(known, '1')
    expectLockedOut(missing, '1')
    expect(missing.body).toBe(known.body)
  })

  it('ends a lockout by itself, doubles it with each further failure, and forgets failures after a success', async () => {
    const { app } = apps()
    const home = clientAddress()
    const growing = await signup(app)
    const recovering = await signup(app)
    await failTimes(app, growing.email, 3, home)
    await failTimes(app, recovering.email, 3, home)
    expectLockedOut(await attempt(app, growing.email, PASSWORD, home), '1')
    await sleep(1100)

    // After the first lockout one more failure locks for twice as long.
    await failTimes(app, growing.email, 1, home)
    expectLockedOut(await attempt(app, growing.email, PASSWORD, home), '2')

    // The right password after the lockout logs in, and the count starts again.
    expect((await attempt(app, recovering.email, PASSWORD, home)).statusCode).toBe(200)
    await failTimes(app, recovering.email, 2, home)
    expect((await attempt(app, recovering.email, PASSWORD, home)).statusCode).toBe(200)
  })

  it('lets no more than the threshold of attempts sent all at once through to a password check', async () => {
    const { app, other } = apps()
    const home = clientAddress()
    const user = await signup(app)
    const burst = await Promise.all(
      Array.from({ length: 10 }, (_, i) => attempt(i % 2 === 0 ? app : other, user.email, `wrong guess number ${i}`, home))
    )
    const statuses = burst.map((response) => response.statusCode).sort()
    // The instances share the count in Redis; in memory each has its own threshold.
    const through = sharedStore ? 3 : 6
    expect(statuses).toEqual([...Array<number>(through).fill(400), ...Array<number>(10 - through).fill(429)])
  })

  it('an attacker at one address cannot keep the owner out: the owner signs in from another', async () => {
    const { app } = apps()
    const [home, attacker] = [clientAddress(), clientAddress()]
    const user = await signup(app)
    await failTimes(app, user.email, 3, attacker)
    expectLockedOut(await attempt(app, user.email, 'still guessing', attacker), '1')
    expect((await attempt(app, user.email, PASSWORD, home)).statusCode).toBe(200)
    // The attacker's address stays locked out for this account.
    expect((await attempt(app, user.email, PASSWORD, attacker)).statusCode).toBe(429)
  })

  it('counts an IPv6 client by its /64 and an IPv4-mapped address as the IPv4 address', async () => {
    const { app } = apps()
    const user = await signup(app)
    // Three addresses of one /64: one client choosing a new address per guess.
    for (const address of ['2001:db8:7:1::1', '2001:db8:7:1::2', '2001:db8:7:1:ffff::3']) {
      expect((await attempt(app, user.email, 'a guess', address)).statusCode).toBe(400)
    }
    expect((await attempt(app, user.email, PASSWORD, '2001:db8:7:1::99')).statusCode).toBe(429)
    expect((await attempt(app, user.email, PASSWORD, '2001:db8:7:2::1')).statusCode).toBe(200)

    const mapped = await signup(app)
    await failTimes(app, mapped.email, 3, '192.0.2.33')
    expect((await attempt(app, mapped.email, PASSWORD, '::ffff:192.0.2.33')).statusCode).toBe(429)
  })

  it('a distributed guesser gets a bounded number of guesses, and the owner’s trusted device still signs in', async () => {
    const { app } = apps()
    const home = clientAddress()
    const user = await signup(app)
    // The owner signed in on this device before the attack: it holds a device cookie.
    const device = deviceCookie(await attempt(app, user.email, PASSWORD, home))

    // One guess from each of many addresses.
    let checked = 0
    for (let i = 1; i <= 20; i++) {
      const response = await attempt(app, user.email, `distributed guess ${i}`, `203.0.113.${i}`)
      expect([400, 429]).toContain(response.statusCode)
      if (response.statusCode === 400) checked++
    }
    // Only the account-wide threshold of untrusted guesses reached a password check.
    expect(checked).toBe(6)
    // Untrusted devices are locked out now, the owner's new ones included...
    expect((await attempt(app, user.email, PASSWORD, '198.51.100.200')).statusCode).toBe(429)
    // ...but not the device where the owner signed in.
    const trusted = await attempt(app, user.email, PASSWORD, '198.51.100.201', device)
    expect(trusted.statusCode).toBe(200)
  })

  it('a device cookie is for one account and cannot be forged', async () => {
    const { app } = apps()
    const home = clientAddress()
    const user = await signup(app)
    const victim = await signup(app)
    const [[, attackerValue] = ['', '']] = Object.entries(deviceCookie(await attempt(app, user.email, PASSWORD, home)))
    const [[victimName, victimValue] = ['', '']] = Object.entries(deviceCookie(await attempt(app, victim.email, PASSWORD, '192.0.2.99')))
    // The victim's account is locked for untrusted devices.
    for (let i = 1; i <= 6; i++) await attempt(app, victim.email, 'guess', `192.0.2.${100 + i}`)
    expect((await attempt(app, victim.email, PASSWORD, '192.0.2.200')).statusCode).toBe(429)
    // Another account's cookie under the victim's name, or a cookie with a forged signature, is not trusted.
    const [device, issuedAt, mac = ''] = victimValue.split('.')
    const flip = (text: string, at: number) => text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1)
    const forgeries = [
      `${device}.${issuedAt}.${flip(mac, 10)}`,
      // The same signature in another base64url spelling (the last character's unused bits).
      `${device}.${issuedAt}.${mac.slice(0, -1)}${String.fromCharCode(mac.charCodeAt(mac.length - 1) ^ 1)}`,
      `${device}.${Number(issuedAt) + 86_400}.${mac}`
    ]
    for (const value of [attackerValue, ...forgeries, `${victimValue}.x`, '']) {
      expect((await attempt(app, victim.email, PASSWORD, '192.0.2.201', { [victimName]: value })).statusCode).toBe(429)
    }
    expect((await attempt(app, victim.email, PASSWORD, '192.0.2.201', { [victimName]: victimValue })).statusCode).toBe(200)
  })

  it('a wrong current password is throttled per account, apart from logins', async () => {
    const { app } = apps()
    const [home, attacker] = [clientAddress(), clientAddress()]
    const user = await userWithToken(app)
    // Failed logins elsewhere (the account locked from one address) do not stop a password change...
    await failTimes(app, user.email, 3, attacker)
    expect((await changePassword(app, user.tokens.access_token, PASSWORD, 'the first new passphrase')).statusCode).toBe(204)
    // ...and wrong current passwords lock re-authentication of this account, whatever its email.
    for (let i = 0; i < 3; i++) {
      expect((await changePassword(app, user.tokens.access_token, 'not the password at all')).statusCode).toBe(400)
    }
    expectLockedOut(await changePassword(app, user.tokens.access_token, 'the first new passphrase'), '1')
    // Renaming the login does not reset the count (it needs the password anyway).
    const rename = await app.inject({
      method: 'PATCH',
      url: '/users/me',
      headers: user.headers,
      payload: { email: uniqueEmail('renamed'), current_password: 'the first new passphrase' }
    })
    expectLockedOut(rename, '1')
    // Signing in is not affected.
    expect((await attempt(app, user.email, 'the first new passphrase', home)).statusCode).toBe(200)
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
    const home = clientAddress()
    const user = await signup(context.app)
    await failTimes(context.app, user.email, 3, home)
    expect((await attempt(context.app, user.email, PASSWORD, home)).statusCode).toBe(429)
    expect((await attempt(context.other, user.email, PASSWORD, home)).statusCode).toBe(200)
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

  it('locks an account out on every instance, whichever counted the failures', async () => {
    const home = clientAddress()
    const user = await signup(context.app)
    await failTimes(context.app, user.email, 2, home)
    await failTimes(context.other, user.email, 1, home)
    expectLockedOut(await attempt(context.app, user.email, PASSWORD, home), '1')
    expectLockedOut(await attempt(context.other, user.email, PASSWORD, home), '1')
  })
})

describe.skipIf(!REDIS_SERVER)('while Redis is unreachable', () => {
  const redis = useRedis()
  const context = {} as { app: FastifyInstance }
  beforeAll(async () => {
    context.app = await buildApp({ ...LOCKOUT, REDIS_URL: redis.url })
  })
  afterAll(async () => {
    await context.app?.close()
  })

  it('refuses password logins with 503 and Retry-After, and serves refreshes uncounted', async () => {
    const home = clientAddress()
    const user = await signup(context.app)
    const tokens = (await attempt(context.app, user.email, PASSWORD, home)).json()
    await redis.stop()

    const login = await attempt(context.app, user.email, PASSWORD, home)
    expect(login.statusCode).toBe(503)
    expect(login.headers['retry-after']).toBe('5')
    expect(login.json()).toMatchObject({ status: 503, title: 'Service Unavailable' })
    const refresh = await tokenRequest(context.app, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token })
    expect(refresh.statusCode).toBe(200)
  })
})

describe('at the default limits', () => {
  const ctx = useApp()

  it('five failures from one address lock the account there for 30 seconds; elsewhere the owner signs in', async () => {
    const [home, attacker] = [clientAddress(), clientAddress()]
    const user = await signup(ctx.app)
    await failTimes(ctx.app, user.email, 5, attacker)
    expectLockedOut(await attempt(ctx.app, user.email, PASSWORD, attacker), '30')
    expect((await attempt(ctx.app, user.email, PASSWORD, home)).statusCode).toBe(200)
  })
})

describe('the lockout schedule', () => {
  it('starts at the threshold, doubles, and stops at the cap', () => {
    const policy = { baseDelayMs: 30_000, maxDelayMs: 900_000, windowMs: 900_000 }
    const delays = [1, 4, 5, 6, 7, 9, 10, 11, 500].map((failures) => lockoutDelay(failures, 5, policy))
    expect(delays).toEqual([0, 0, 30_000, 60_000, 120_000, 480_000, 900_000, 900_000, 900_000])
  })
})
