// User administration: listing users, activation and roles, the last admin.
import type { LightMyRequestResponse } from 'fastify'
import { describe, expect, it } from 'vitest'
import { serviceRegistration } from '../src/oauth/clients.js'
import { adminWithToken, bearer, login, PASSWORD, tokenRequest, useApp, userWithToken } from './helper.js'

const ctx = useApp()

describe('GET /users', () => {
  it('an admin pages through every user, oldest first', async () => {
    const admin = await adminWithToken(ctx.app)
    for (let i = 0; i < 3; i++) await userWithToken(ctx.app)
    const total = await ctx.app.prisma.user.count()
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const response: LightMyRequestResponse = await ctx.app.inject({ method: 'GET', url: `/users?limit=2${cursor ? `&cursor=${cursor}` : ''}`, headers: admin.headers })
      expect(response.statusCode).toBe(200)
      const page: { data: Array<{ id: string }>; next_cursor: string | null } = response.json()
      seen.push(...page.data.map((user) => user.id))
      cursor = page.next_cursor
    } while (cursor)
    expect(seen).toHaveLength(total)
    expect(new Set(seen).size).toBe(total)
    expect(seen).toContain(admin.id)
  })

  it('a user without users:read gets 403', async () => {
    const user = await userWithToken(ctx.app)
    expect((await ctx.app.inject({ method: 'GET', url: '/users', headers: user.headers })).statusCode).toBe(403)
  })
})

describe('PATCH /users/{id}', () => {
  it('deactivating a user refuses their tokens at once and stops logins', async () => {
    const admin = await adminWithToken(ctx.app)
    const user = await userWithToken(ctx.app)
    const response = await ctx.app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: admin.headers, payload: { is_active: false } })
    expect(response.statusCode).toBe(200)
    expect(response.json()).toMatchObject({ id: user.id, is_active: false })
    expect((await ctx.app.inject({ method: 'GET', url: '/users/me', headers: user.headers })).statusCode).toBe(401)
    const refresh = await tokenRequest(ctx.app, { grant_type: 'refresh_token', refresh_token: user.tokens.refresh_token ?? '' })
    expect(refresh.json().error).toBe('invalid_grant')
    const relogin = await tokenRequest(ctx.app, { grant_type: 'password', username: user.email, password: user.password })
    expect(relogin.json().error).toBe('invalid_grant')
    // Reactivated, the user logs in again.
    await ctx.app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: admin.headers, payload: { is_active: true } })
    expect((await login(ctx.app, user.email)).access_token).toBeDefined()
  })

  it('promoting a user gives admin scopes at the next login; old tokens end', async () => {
    const admin = await adminWithToken(ctx.app)
    const user = await userWithToken(ctx.app)
    const response = await ctx.app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: admin.headers, payload: { role: 'admin' } })
    expect(response.json().role).toBe('admin')
    expect((await ctx.app.inject({ method: 'GET', url: '/users/me', headers: user.headers })).statusCode).toBe(401)
    expect((await login(ctx.app, user.email)).scope).toBe('posts:write posts:moderate users:read users:write clients:manage audit:read')
  })

  it('the last admin cannot be demoted or deactivated', async () => {
    // This file's database may hold other admins: demote them first.
    const admin = await adminWithToken(ctx.app)
    await ctx.app.prisma.user.updateMany({ where: { role: 'admin', id: { not: admin.id } }, data: { role: 'user' } })
    for (const payload of [{ role: 'user' }, { is_active: false }]) {
      const response = await ctx.app.inject({ method: 'PATCH', url: `/users/${admin.id}`, headers: admin.headers, payload })
      expect(response.statusCode).toBe(409)
      expect(response.json()).toMatchObject({ status: 409, detail: 'The last active admin cannot be demoted or deactivated.' })
    }
    const deleted = await ctx.app.inject({ method: 'DELETE', url: '/users/me', headers: admin.headers, payload: { current_password: PASSWORD } })
    expect(deleted.statusCode).toBe(409)
    const stored = await ctx.app.prisma.user.findUniqueOrThrow({ where: { id: admin.id } })
    expect(stored).toMatchObject({ role: 'admin', isActive: true })
  })

  it('two admins demoting each other at once leave one admin', async () => {
    const first = await adminWithToken(ctx.app)
    const second = await adminWithToken(ctx.app)
    await ctx.app.prisma.user.updateMany({ where: { role: 'admin', id: { notIn: [first.id, second.id] } }, data: { role: 'user' } })
    const answers = await Promise.all([
      ctx.app.inject({ method: 'PATCH', url: `/users/${second.id}`, headers: first.headers, payload: { role: 'user' } }),
      ctx.app.inject({ method: 'PATCH', url: `/users/${first.id}`, headers: second.headers, payload: { role: 'user' } })
    ])
    expect(await ctx.app.prisma.user.count({ where: { role: 'admin', isActive: true } })).toBe(1)
    expect(answers.map((r) => r.statusCode).sort()).toEqual(expect.arrayContaining([200]))
  })

  it('refuses unknown fields, an unknown role and an unknown user', async () => {
    const admin = await adminWithToken(ctx.app)
    const user = await userWithToken(ctx.app)
    for (const payload of [{ email: 'x@example.com' }, { role: 'root' }, {}]) {
      const response = await ctx.app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: admin.headers, payload })
      expect(response.statusCode).toBe(400)
    }
    const missing = await ctx.app.inject({ method: 'PATCH', url: '/users/00000000-0000-4000-8000-000000000000', headers: admin.headers, payload: { is_active: false } })
    expect(missing.statusCode).toBe(404)
  })

  it('a service client with users:write can deactivate a user', async () => {
    const user = await userWithToken(ctx.app)
    const client = await ctx.app.clientsRepository.create({ name: 'ops', ...serviceRegistration(['users:write']) })
    const token = (await tokenRequest(ctx.app, { grant_type: 'client_credentials', client_id: client.client_id, client_secret: client.client_secret ?? '' })).json().access_token
    const response = await ctx.app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: bearer(token), payload: { is_active: false } })
    expect(response.statusCode).toBe(200)
  })
})
