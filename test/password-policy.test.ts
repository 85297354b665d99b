// The password policy after NIST SP 800-63B (a minimum length, long
// passphrases, no composition rules, no common passwords, not the email) and
// the upgrade of hashes made with older argon2 parameters at login.
import argon2 from 'argon2'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { COMMON_PASSWORDS } from '../src/plugins/app/passwords.js'
import { buildApp, login, PASSWORD, signup, tokenRequest, uniqueEmail, useApp, userWithToken } from './helper.js'

const ctx = useApp()

const signupWith = (app: FastifyInstance, password: string, email = uniqueEmail()) =>
  app.inject({ method: 'POST', url: '/auth/signup', payload: { email, full_name: 'Policy', password } })

describe('new passwords', () => {
  it('bundles a list of at least 10,000 common passwords', () => {
    expect(COMMON_PASSWORDS.size).toBeGreaterThanOrEqual(10_000)
    expect(COMMON_PASSWORDS.has('password')).toBe(true)
  })

  it('refuses a common password, whatever its case, with a field error', async () => {
    for (const password of ['qwerty123456', 'QWERTY123456', '1qaz2wsx3edc', 'LeaveMeAlone']) {
      const response = await signupWith(ctx.app, password)
      expect(response.statusCode).toBe(400)
      expect(response.json().errors).toEqual([{ field: 'password', message: expect.stringContaining('common') }])
    }
  })

  it('refuses a common password as the new one of a password change', async () => {
    const user = await userWithToken(ctx.app)
    const response = await ctx.app.inject({
      method: 'PUT',
      url: '/users/me/password',
      headers: user.headers,
      payload: { current_password: PASSWORD, new_password: 'Q1W2E3R4T5Y6' }
    })
    expect(response.statusCode).toBe(400)
    expect(response.json().errors).toEqual([{ field: 'new_password', message: expect.stringContaining('common') }])
    expect((await login(ctx.app, user.email)).access_token).toBeDefined()
  })

  it('refuses the email as the password', async () => {
    const email = uniqueEmail('same')
    const response = await signupWith(ctx.app, email.toUpperCase(), email)
    expect(response.statusCode).toBe(400)
    expect(response.json().errors).toEqual([{ field: 'password', message: 'must not be your email address' }])
  })

  it('needs the default minimum of 12 characters, counted as characters, not bytes', async () => {
    expect((await signupWith(ctx.app, 'elevenchars')).statusCode).toBe(400)
    expect((await signupWith(ctx.app, 'twelve chars')).statusCode).toBe(201)
    // Twelve characters, more than twelve bytes.
    expect((await signupWith(ctx.app, 'ünïcödé pâßw')).statusCode).toBe(201)
    expect((await signupWith(ctx.app, 'ünïcödé pâß')).statusCode).toBe(400)
  })

  it('accepts long passphrases (64 characters and far beyond) and logs in with them', async () => {
    for (const password of ['a long passphrase, '.repeat(4).slice(0, 64), 'x y z '.repeat(170)]) {
      expect([...password].length).toBeGreaterThanOrEqual(64)
      const email = uniqueEmail('long')
      expect((await signupWith(ctx.app, password, email)).statusCode).toBe(201)
      expect((await login(ctx.app, email, password)).access_token).toBeDefined()
    }
  })

  it('imposes no composition rules: lower-case only, digits only, no symbols are fine', async () => {
    for (const password of ['onlylowercaseletters', '493817265019283746', 'NO SYMBOLS OR DIGITS HERE']) {
      expect((await signupWith(ctx.app, password)).statusCode).toBe(201)
    }
  })
})

describe('a configured minimum length', () => {
  const local = {} as { app: FastifyInstance }
  beforeAll(async () => {
    local.app = await buildApp({ PASSWORD_MIN_LENGTH: 16 })
  })
  afterAll(async () => {
    await local.app?.close()
  })

  it('is enforced with a message naming it', async () => {
    const response = await signupWith(local.app, 'fifteen chars!!')
    expect(response.statusCode).toBe(400)
    expect(response.json().errors).toEqual([{ field: 'password', message: 'must be at least 16 characters' }])
    expect((await signupWith(local.app, 'sixteen chars!!!')).statusCode).toBe(201)
  })
})

describe('hashes made with older argon2 parameters', () => {
  it('are upgraded to the configured ones at the next successful login, not at a failed one', async () => {
    const user = await signup(ctx.app)
    const old = await argon2.hash(PASSWORD, { type: argon2.argon2id, memoryCost: 2048, timeCost: 1, parallelism: 1 })
    await ctx.app.prisma.user.update({ where: { id: user.id }, data: { passwordHash: old } })
    const stored = async () => (await ctx.app.prisma.user.findUniqueOrThrow({ where: { id: user.id } })).passwordHash

    const failed = await tokenRequest(ctx.app, { grant_type: 'password', username: user.email, password: 'not the password' })
    expect(failed.statusCode).toBe(400)
    expect(await stored()).toBe(old)

    await login(ctx.app, user.email)
    const upgraded = await stored()
    expect(upgraded).not.toBe(old)
    // The test configuration's parameters (test/helper.ts).
    const params = (hash: string) => Object.fromEntries((hash.split('$')[3] ?? '').split(',').map((pair) => pair.split('=')))
    expect(params(old)).toEqual({ m: '2048', t: '1', p: '1' })
    expect(upgraded.startsWith('$argon2id$')).toBe(true)
    expect(params(upgraded)).toEqual({ m: '4096', t: '2', p: '1' })
    expect(await argon2.verify(upgraded, PASSWORD)).toBe(true)

    // Already current: the next login leaves it alone.
    await login(ctx.app, user.email)
    expect(await stored()).toBe(upgraded)
  })
})
