// The caller's own account and reading other accounts.
import { describe, expect, it } from 'vitest'
import { adminWithToken, bearer, fileMailbox, login, PASSWORD, serviceClient, tokenRequest, uniqueEmail, useApp, userWithToken } from './helper.js'
import { tokenIn } from './mailbox.js'

const ctx = useApp()

describe('GET /users/me', () => {
  it('returns the caller, without any secret', async () => {
    const user = await userWithToken(ctx.app, { full_name: 'Grace Hopper' })
    const response = await ctx.app.inject({ method: 'GET', url: '/users/me', headers: user.headers })
    expect(response.statusCode).toBe(200)
    expect(response.json()).toEqual({
      id: user.id,
      email: user.email,
      email_verified: false,
      full_name: 'Grace Hopper',
      role: 'user',
      is_active: true,
      mfa_enabled: false,
      created_at: expect.any(String)
    })
    expect(response.body).not.toMatch(/password|hash|argon/i)
  })

  it('refuses a service client: there is no account behind it', async () => {
    const client = await serviceClient(ctx.app, ['users:read'])
    const token = (
      await tokenRequest(ctx.app, { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret })
    ).json().access_token
    const response = await ctx.app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) })
    expect(response.statusCode).toBe(403)
    expect(response.json()).toMatchObject({ status: 403, title: 'Forbidden' })
  })
})

/** Confirms an email change with the link sent to the new address. */
async function confirmChange(email: string) {
  const [message] = await (await fileMailbox()).waitFor(email)
  const response = await ctx.app.inject({ method: 'POST', url: '/auth/email/verify', payload: { token: tokenIn(message!) } })
  expect(response.statusCode).toBe(204)
}

describe('PATCH /users/me', () => {
  it('changes the name, and the email once the link sent to the new address is used', async () => {
    const user = await userWithToken(ctx.app)
    const email = uniqueEmail('renamed')
    const response = await ctx.app.inject({
      method: 'PATCH',
      url: '/users/me',
      headers: user.headers,
      payload: { full_name: ' New Name ', email: email.toUpperCase(), current_password: PASSWORD }
    })
    expect(response.statusCode).toBe(200)
    expect(response.headers['cache-control']).toBe('no-store')
    expect(response.json()).toMatchObject({ id: user.id, full_name: 'New Name', email: user.email, pending_email: email })
    await confirmChange(email)
    expect((await login(ctx.app, email)).access_token).toBeDefined()
    // The session that asked for the change goes on.
    const me = await ctx.app.inject({ method: 'GET', url: '/users/me', headers: user.headers })
    expect(me.json()).toMatchObject({ email, email_verified: true })
    expect(me.json()).not.toHaveProperty('pending_email')
  })

  it('a new email needs the current password: a stolen token cannot rename the login', async () => {
    const user = await userWithToken(ctx.app)
    const other = await login(ctx.app, user.email)
    for (const extra of [{}, { current_password: 'not the password at all' }]) {
      const response = await ctx.app.inject({
        method: 'PATCH',
        url: '/users/me',
        headers: user.headers,
        payload: { email: uniqueEmail('thief'), ...extra }
      })
      expect(response.statusCode).toBe(400)
      expect(response.json().errors).toEqual([{ field: 'current_password', message: expect.any(String) }])
    }
    expect((await ctx.app.prisma.user.findUniqueOrThrow({ where: { id: user.id } })).email).toBe(user.email)
    // A change with it ends the other sessions when it happens: the email is part of the account's security state.
    const moved = uniqueEmail('moved')
    const changed = await ctx.app.inject({
      method: 'PATCH',
      url: '/users/me',
      headers: user.headers,
      payload: { email: moved, current_password: PASSWORD }
    })
    expect(changed.statusCode).toBe(200)
    expect((await ctx.app.inject({ method: 'GET', url: '/users/me', headers: bearer(other.access_token) })).statusCode).toBe(200)
    await confirmChange(moved)
    expect((await ctx.app.inject({ method: 'GET', url: '/users/me', headers: bearer(other.access_token) })).statusCode).toBe(401)
  })

  it('a taken email is 409 and changes nothing', async () => {
    const user = await userWithToken(ctx.app)
    const other = await userWithToken(ctx.app)
    const response = await ctx.app.inject({
      method: 'PATCH',
      url: '/users/me',
      headers: user.headers,
      payload: { email: other.email, full_name: 'Changed', current_password: PASSWORD }
    })
    expect(response.statusCode).toBe(409)
    const stored = await ctx.app.prisma.user.findUniqueOrThrow({ where: { id: user.id } })
    expect(stored.fullName).toBe('Test User')
    expect(stored.email).toBe(user.email)
  })

  it('refuses role changes, unknown fields and empty bodies', async () => {
    const user = await userWithToken(ctx.app)
    for (const payload of [{ role: 'admin' }, { full_name: 'x', is_active: false }, {}]) {
      const response = await ctx.app.inject({ method: 'PATCH', url: '/users/me', headers: user.headers, payload })
      expect(response.statusCode).toBe(400)
    }
    const stored = await ctx.app.prisma.user.findUniqueOrThrow({ where: { id: user.id } })
    expect(stored.role).toBe('user')
  })
})

describe('PUT /users/me/password', () => {
  it('changes the password and ends every other session, keeping this one', async () => {
    const user = await userWithToken(ctx.app)
    const other = await login(ctx.app, user.email)
    const newPassword = 'a brand new passphrase'
    const response = await ctx.app.inject({
      method: 'PUT',
      url: '/users/me/password',
      headers: user.headers,
      payload: { current_password: PASSWORD, new_password: newPassword }
    })
    expect(response.statusCode).toBe(204)
    expect((await ctx.app.inject({ method: 'GET', url: '/users/me', headers: user.headers })).statusCode).toBe(200)
    expect((await ctx.app.inject({ method: 'GET', url: '/users/me', headers: bearer(other.access_token) })).statusCode).toBe(401)
    const oldRefresh = await tokenRequest(ctx.app, { grant_type: 'refresh_token', refresh_token: other.refresh_token ?? '' })
    expect(oldRefresh.json().error).toBe('invalid_grant')
    expect((await tokenRequest(ctx.app, { grant_type: 'password', username: user.email, password: PASSWORD })).statusCode).toBe(400)
    expect((await login(ctx.app, user.email, newPassword)).access_token).toBeDefined()
  })

  it('a wrong current password is 400 and changes nothing', async () => {
    const user = await userWithToken(ctx.app)
    const response = await ctx.app.inject({
      method: 'PUT',
      url: '/users/me/password',
      headers: user.headers,
      payload: { current_password: 'wrong wrong wrong', new_password: 'another long password' }
    })
    expect(response.statusCode).toBe(400)
    expect(response.json().errors).toEqual([{ field: 'current_password', message: 'is incorrect' }])
    expect((await login(ctx.app, user.email)).access_token).toBeDefined()
  })

  it('a weak new password is 400', async () => {
    const user = await userWithToken(ctx.app)
    const response = await ctx.app.inject({
      method: 'PUT',
      url: '/users/me/password',
      headers: user.headers,
      payload: { current_password: PASSWORD, new_password: 'short' }
    })
    expect(response.statusCode).toBe(400)
    expect(response.json().errors[0].field).toBe('new_password')
  })

  it('needs a token', async () => {
    const response = await ctx.app.inject({ method: 'PUT', url: '/users/me/password', payload: { current_password: 'x', new_password: 'y' } })
    expect(response.statusCode).toBe(401)
  })
})

describe('DELETE /users/me', () => {
  it('deletes the account with its posts and sessions', async () => {
    const user = await userWithToken(ctx.app)
    const post = await ctx.app.inject({ method: 'POST', url: '/posts', headers: user.headers, payload: { title: 'Bye', content: 'Soon gone' } })
    expect(post.statusCode).toBe(201)
    const withoutPassword = await ctx.app.inject({ method: 'DELETE', url: '/users/me', headers: user.headers })
    expect(withoutPassword.statusCode).toBe(400)
    const wrongPassword = await ctx.app.inject({ method: 'DELETE', url: '/users/me', headers: user.headers, payload: { current_password: 'not the password at all' } })
    expect(wrongPassword.statusCode).toBe(400)
    expect(await ctx.app.prisma.user.findUnique({ where: { id: user.id } })).not.toBeNull()
    const response = await ctx.app.inject({ method: 'DELETE', url: '/users/me', headers: user.headers, payload: { current_password: PASSWORD } })
    expect(response.statusCode).toBe(204)
    expect(await ctx.app.prisma.user.findUnique({ where: { id: user.id } })).toBeNull()
    expect(await ctx.app.prisma.post.count({ where: { authorId: user.id } })).toBe(0)
    expect((await ctx.app.inject({ method: 'GET', url: `/posts/${post.json().id}` })).statusCode).toBe(404)
    expect((await ctx.app.inject({ method: 'GET', url: '/users/me', headers: user.headers })).statusCode).toBe(401)
    const refresh = await tokenRequest(ctx.app, { grant_type: 'refresh_token', refresh_token: user.tokens.refresh_token ?? '' })
    expect(refresh.json().error).toBe('invalid_grant')
  })
})

describe('GET /users/{id}', () => {
  it('a user reads themself', async () => {
    const user = await userWithToken(ctx.app)
    const response = await ctx.app.inject({ method: 'GET', url: `/users/${user.id}`, headers: user.headers })
    expect(response.statusCode).toBe(200)
    expect(response.json().id).toBe(user.id)
  })

  it('anyone else is refused with 403, whether or not the id exists', async () => {
    const user = await userWithToken(ctx.app)
    const other = await userWithToken(ctx.app)
    const known = await ctx.app.inject({ method: 'GET', url: `/users/${other.id}`, headers: user.headers })
    const unknown = await ctx.app.inject({ method: 'GET', url: '/users/00000000-0000-4000-8000-000000000000', headers: user.headers })
    expect(known.statusCode).toBe(403)
    expect(unknown.statusCode).toBe(403)
    expect(known.body).toBe(unknown.body)
  })

  it('an admin reads anyone, and gets 404 for an unknown id', async () => {
    const admin = await adminWithToken(ctx.app)
    const user = await userWithToken(ctx.app)
    const response = await ctx.app.inject({ method: 'GET', url: `/users/${user.id}`, headers: admin.headers })
    expect(response.statusCode).toBe(200)
    expect(response.json().email).toBe(user.email)
    const missing = await ctx.app.inject({ method: 'GET', url: '/users/00000000-0000-4000-8000-000000000000', headers: admin.headers })
    expect(missing.statusCode).toBe(404)
    expect(missing.json()).toMatchObject({ status: 404, title: 'Not Found' })
  })

  it('a malformed id is 400 naming the field', async () => {
    const user = await userWithToken(ctx.app)
    const response = await ctx.app.inject({ method: 'GET', url: '/users/42', headers: user.headers })
    expect(response.statusCode).toBe(400)
    expect(response.json().errors[0].field).toBe('id')
  })
})
