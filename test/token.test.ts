// The OAuth2 token endpoint with the password grant, and signup.
import { describe, expect, it } from 'vitest'
import {
  basicAuth,
  bearer,
  decodeJwt,
  PASSWORD,
  signup,
  tokenRequest,
  uniqueEmail,
  useApp
} from './helper.js'

const ctx = useApp()

describe('signup', () => {
  it('creates an account and never returns the password', async () => {
    const email = uniqueEmail('Ada')
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/signup',
      payload: { email: `  ${email.toUpperCase()} `, full_name: '  Ada Lovelace ', password: PASSWORD }
    })
    expect(response.statusCode).toBe(201)
    const user = response.json()
    expect(user).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      email: email.toLowerCase(),
      email_verified: false,
      full_name: 'Ada Lovelace',
      role: 'user',
      is_active: true,
      mfa_enabled: false,
      created_at: expect.any(String)
    })
    expect(response.headers.location).toBe(`/users/${user.id}`)
    expect(response.body).not.toContain(PASSWORD)
    const stored = await ctx.app.prisma.user.findUniqueOrThrow({ where: { id: user.id } })
    expect(stored.passwordHash).toMatch(/^\$argon2id\$/)
  })

  it('a taken email is 409, whatever its case', async () => {
    const { email } = await signup(ctx.app)
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/signup',
      payload: { email: email.toUpperCase(), full_name: 'Again', password: PASSWORD }
    })
    expect(response.statusCode).toBe(409)
    expect(response.headers['content-type']).toContain('application/problem+json')
    expect(response.json()).toMatchObject({ status: 409, title: 'Conflict' })
  })

  it('names the invalid field, one at a time', async () => {
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/signup',
      payload: { email: 'not-an-email', full_name: '   ', password: PASSWORD }
    })
    expect(response.statusCode).toBe(400)
    const fields = (response.json().errors as Array<{ field: string }>).map((error) => error.field)
    expect(fields).toHaveLength(1)
    expect(['email', 'full_name']).toContain(fields[0])
  })

  it('refuses unknown properties instead of dropping them', async () => {
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/signup',
      payload: { email: uniqueEmail(), full_name: 'Eve', password: PASSWORD, role: 'admin' }
    })
    expect(response.statusCode).toBe(400)
    expect(response.json().errors).toEqual([{ field: 'role', message: 'is not an allowed property' }])
  })

  it('refuses a missing field, naming it', async () => {
    const response = await ctx.app.inject({ method: 'POST', url: '/auth/signup', payload: { email: uniqueEmail() } })
    expect(response.statusCode).toBe(400)
    const fields = (response.json().errors as Array<{ field: string }>).map((error) => error.field)
    expect(fields).toHaveLength(1)
    expect(['full_name', 'password']).toContain(fields[0])
  })

  it('refuses a short password and one equal to the email', async () => {
    const short = await ctx.app.inject({
      method: 'POST',
      url: '/auth/signup',
      payload: { email: uniqueEmail(), full_name: 'Bob', password: 'short' }
    })
    expect(short.statusCode).toBe(400)
    expect(short.json().errors).toEqual([{ field: 'password', message: 'must be at least 12 characters' }])
    const email = uniqueEmail()
    const same = await ctx.app.inject({
      method: 'POST',
      url: '/auth/signup',
      payload: { email, full_name: 'Bob', password: email }
    })
    expect(same.statusCode).toBe(400)
    expect(same.json().errors[0].field).toBe('password')
  })

  it('does not coerce types in JSON bodies', async () => {
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/signup',
      payload: { email: uniqueEmail(), full_name: 12345, password: PASSWORD }
    })
    expect(response.statusCode).toBe(400)
    expect(response.json().errors[0].field).toBe('full_name')
  })
})

describe('password grant', () => {
  it('a form-encoded login returns access and refresh tokens, not to be cached', async () => {
    const { email, id } = await signup(ctx.app)
    const response = await tokenRequest(ctx.app, { grant_type: 'password', username: email, password: PASSWORD })
    expect(response.statusCode).toBe(200)
    expect(response.headers['cache-control']).toBe('no-store')
    expect(response.headers['pragma']).toBe('no-cache')
    const body = response.json()
    expect(body).toEqual({
      access_token: expect.any(String),
      token_type: 'bearer',
      expires_in: 900,
      refresh_token: expect.stringMatching(/^bapi_rt_[A-Za-z0-9_-]{43}$/),
      scope: 'posts:write'
    })
    const { header, claims } = decodeJwt(body.access_token)
    expect(header).toEqual({ alg: 'EdDSA', typ: 'at+jwt', kid: expect.any(String) })
    expect(claims).toEqual({
      iss: 'http://localhost:3000',
      aud: 'blog-api',
      sub: id,
      client_id: 'public',
      scope: 'posts:write',
      sid: expect.stringMatching(/^[0-9a-f-]{36}$/),
      amr: ['pwd'],
      jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
      iat: expect.any(Number),
      nbf: expect.any(Number),
      exp: expect.any(Number)
    })
    expect((claims.exp as number) - (claims.iat as number)).toBe(900)
    const me = await ctx.app.inject({ method: 'GET', url: '/users/me', headers: bearer(body.access_token) })
    expect(me.statusCode).toBe(200)
    expect(me.json().id).toBe(id)
  })

  it('accepts JSON bodies too, and the email in any case', async () => {
    const { email } = await signup(ctx.app)
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/token',
      payload: { grant_type: 'password', username: email.toUpperCase(), password: PASSWORD }
    })
    expect(response.statusCode).toBe(200)
  })

  it('a wrong password and an unknown email get the same answer', async () => {
    const { email } = await signup(ctx.app)
    const wrong = await tokenRequest(ctx.app, { grant_type: 'password', username: email, password: 'not the password!' })
    const unknown = await tokenRequest(ctx.app, { grant_type: 'password', username: uniqueEmail('ghost'), password: PASSWORD })
    for (const response of [wrong, unknown]) {
      expect(response.statusCode).toBe(400)
      expect(response.headers['cache-control']).toBe('no-store')
      expect(response.headers['content-type']).toContain('application/json')
    }
    expect(wrong.json()).toEqual({ error: 'invalid_grant', error_description: 'The email or password is incorrect.' })
    expect(unknown.body).toBe(wrong.body)
  })

  it('an unknown email costs a password verification, like a wrong password', async () => {
    // Counted, not timed: every attempt runs exactly one argon2 verification
    // (against a dummy hash when there is no account), so the two answers take
    // the same time without the test depending on the machine's load.
    const { email } = await signup(ctx.app)
    const ghost = uniqueEmail('ghost')
    const verifications = async () => {
      const metric = await ctx.app.metrics.registry.getSingleMetric('blog_api_password_hash_duration_seconds')?.get()
      const values = (metric?.values ?? []) as Array<{ metricName?: string; labels: Record<string, unknown>; value: number }>
      return values.find((value) => value.metricName?.endsWith('_count') && value.labels.operation === 'verify')?.value ?? 0
    }
    const attempt = (username: string) =>
      tokenRequest(ctx.app, { grant_type: 'password', username, password: 'not the password!' })

    const before = await verifications()
    const known = await attempt(email)
    const afterKnown = await verifications()
    const unknown = await attempt(ghost)
    const afterUnknown = await verifications()

    expect(known.json()).toEqual(unknown.json())
    expect(afterKnown - before).toBe(1)
    expect(afterUnknown - afterKnown).toBe(1)
  })

  it('a deactivated account cannot log in, with the same answer as a wrong password', async () => {
    const { email, id } = await signup(ctx.app)
    await ctx.app.prisma.user.update({ where: { id }, data: { isActive: false } })
    const response = await tokenRequest(ctx.app, { grant_type: 'password', username: email, password: PASSWORD })
    expect(response.statusCode).toBe(400)
    expect(response.json()).toEqual({ error: 'invalid_grant', error_description: 'The email or password is incorrect.' })
  })

  it('missing parameters are invalid_request', async () => {
    const response = await tokenRequest(ctx.app, { grant_type: 'password', username: 'x@example.com' })
    expect(response.statusCode).toBe(400)
    expect(response.json().error).toBe('invalid_request')
    const noGrant = await tokenRequest(ctx.app, { username: 'x@example.com', password: PASSWORD })
    expect(noGrant.statusCode).toBe(400)
    expect(noGrant.json()).toEqual({ error: 'invalid_request', error_description: expect.stringContaining('grant_type') })
  })

  it('a repeated parameter is invalid_request', async () => {
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'grant_type=password&grant_type=client_credentials&username=a%40b.c&password=x'
    })
    expect(response.statusCode).toBe(400)
    expect(response.json().error).toBe('invalid_request')
  })

  it('an unknown grant type is unsupported_grant_type', async () => {
    const response = await tokenRequest(ctx.app, { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: 'x' })
    expect(response.statusCode).toBe(400)
    expect(response.json().error).toBe('unsupported_grant_type')
  })

  it('grants the scopes asked for, within what the user may have', async () => {
    const { email } = await signup(ctx.app)
    const narrowed = await tokenRequest(ctx.app, { grant_type: 'password', username: email, password: PASSWORD, scope: 'posts:write' })
    expect(narrowed.json().scope).toBe('posts:write')
    const widened = await tokenRequest(ctx.app, {
      grant_type: 'password',
      username: email,
      password: PASSWORD,
      scope: 'posts:write users:read'
    })
    expect(widened.statusCode).toBe(400)
    expect(widened.json().error).toBe('invalid_scope')
    const unknown = await tokenRequest(ctx.app, { grant_type: 'password', username: email, password: PASSWORD, scope: 'root' })
    expect(unknown.json().error).toBe('invalid_scope')
  })

  it('an empty HTTP Basic pair, as API consoles send, counts as no client', async () => {
    const { email } = await signup(ctx.app)
    const response = await tokenRequest(
      ctx.app,
      { grant_type: 'password', username: email, password: PASSWORD },
      { authorization: basicAuth('', '') }
    )
    expect(response.statusCode).toBe(200)
  })

  it('the public client named without a secret, in Basic or in the body, logs in like no client', async () => {
    const { email } = await signup(ctx.app)
    const form = { grant_type: 'password', username: email, password: PASSWORD }
    const viaBasic = await tokenRequest(ctx.app, form, { authorization: basicAuth('public', '') })
    expect(viaBasic.statusCode).toBe(200)
    const inBody = await tokenRequest(ctx.app, { ...form, client_id: 'public' })
    expect(inBody.statusCode).toBe(200)
    expect(decodeJwt(inBody.json().access_token).claims.client_id).toBe('public')
  })

  it('wrong client credentials on a password login are invalid_client with a Basic challenge', async () => {
    const { email } = await signup(ctx.app)
    const response = await tokenRequest(
      ctx.app,
      { grant_type: 'password', username: email, password: PASSWORD },
      { authorization: basicAuth('00000000-0000-4000-8000-000000000000', 'nope') }
    )
    expect(response.statusCode).toBe(401)
    expect(response.json().error).toBe('invalid_client')
    expect(response.headers['www-authenticate']).toMatch(/^Basic realm=/)
  })
})
