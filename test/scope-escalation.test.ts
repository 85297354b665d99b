// Scopes are the only powers a token carries, and nobody hands out powers
// they do not hold. Each test is an escalation that used to work.
import { describe, expect, it } from 'vitest'
import { adminWithToken, basicAuth, bearer, login, PASSWORD, serviceClient, tokenRequest, useApp, userWithToken } from './helper.js'

const ctx = useApp()

async function clientToken(scopes: string[]) {
  const client = await serviceClient(ctx.app, scopes)
  const answer = await tokenRequest(ctx.app, { grant_type: 'client_credentials' }, { authorization: basicAuth(client.clientId, client.clientSecret) })
  expect(answer.statusCode).toBe(200)
  return { ...client, headers: bearer(answer.json().access_token) }
}

describe('a client with clients:manage', () => {
  it('cannot register a client with scopes it does not hold (users:write, clients:manage → admin)', async () => {
    const manager = await clientToken(['clients:manage'])
    for (const scopes of [['users:write'], ['users:read', 'clients:manage'], ['audit:read']]) {
      const response = await ctx.app.inject({ method: 'POST', url: '/clients', headers: manager.headers, payload: { name: 'escalated', scopes } })
      expect(response.statusCode).toBe(403)
      expect(response.json().detail).toContain('missing')
    }
    // Only with what it holds.
    const allowed = await ctx.app.inject({ method: 'POST', url: '/clients', headers: manager.headers, payload: { name: 'peer', scopes: ['clients:manage'] } })
    expect(allowed.statusCode).toBe(201)
    expect(await ctx.app.prisma.client.count({ where: { name: 'escalated' } })).toBe(0)
  })

  it('cannot take over a more powerful client by rotating its secret, nor delete it', async () => {
    const manager = await clientToken(['clients:manage'])
    const powerful = await serviceClient(ctx.app, ['users:write', 'clients:manage'])
    const rotate = await ctx.app.inject({ method: 'POST', url: `/clients/${powerful.clientId}/secret`, headers: manager.headers })
    expect(rotate.statusCode).toBe(403)
    expect(rotate.body).not.toContain('bapi_cs_')
    const remove = await ctx.app.inject({ method: 'DELETE', url: `/clients/${powerful.clientId}`, headers: manager.headers })
    expect(remove.statusCode).toBe(403)
    // The powerful client still works with its old secret.
    const still = await tokenRequest(ctx.app, { grant_type: 'client_credentials' }, { authorization: basicAuth(powerful.clientId, powerful.clientSecret) })
    expect(still.statusCode).toBe(200)
  })

  it('an admin token narrowed to clients:manage registers only clients:manage', async () => {
    const admin = await adminWithToken(ctx.app)
    const narrowed = await login(ctx.app, admin.email, PASSWORD, 'clients:manage')
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/clients',
      headers: bearer(narrowed.access_token),
      payload: { name: 'escalated', scopes: ['users:write'] }
    })
    expect(response.statusCode).toBe(403)
  })
})

describe('a client with users:write', () => {
  it('cannot make anyone an admin, nor demote or deactivate an admin', async () => {
    const writer = await clientToken(['users:write'])
    const user = await userWithToken(ctx.app)
    const promote = await ctx.app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: writer.headers, payload: { role: 'admin' } })
    expect(promote.statusCode).toBe(403)
    expect(promote.headers['www-authenticate']).toContain('error="insufficient_scope"')
    const admin = await adminWithToken(ctx.app)
    const demote = await ctx.app.inject({ method: 'PATCH', url: `/users/${admin.id}`, headers: writer.headers, payload: { is_active: false } })
    expect(demote.statusCode).toBe(403)
    expect((await ctx.app.prisma.user.findUniqueOrThrow({ where: { id: user.id } })).role).toBe('user')
    expect((await ctx.app.prisma.user.findUniqueOrThrow({ where: { id: admin.id } })).isActive).toBe(true)
    // Ordinary users it may manage.
    const deactivate = await ctx.app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: writer.headers, payload: { is_active: false } })
    expect(deactivate.statusCode).toBe(200)
  })
})

describe('an admin token narrowed to posts:write', () => {
  it('has no admin powers: it reads no other user, edits and deletes no other post, reads no audit trail', async () => {
    const admin = await adminWithToken(ctx.app)
    const narrowed = bearer((await login(ctx.app, admin.email, PASSWORD, 'posts:write')).access_token)
    const author = await userWithToken(ctx.app)
    const post = (await ctx.app.inject({ method: 'POST', url: '/posts', headers: author.headers, payload: { title: 'Mine', content: 'Mine' } })).json()

    expect((await ctx.app.inject({ method: 'GET', url: `/users/${author.id}`, headers: narrowed })).statusCode).toBe(403)
    expect((await ctx.app.inject({ method: 'GET', url: '/users', headers: narrowed })).statusCode).toBe(403)
    expect((await ctx.app.inject({ method: 'GET', url: '/audit-events', headers: narrowed })).statusCode).toBe(403)
    const edit = await ctx.app.inject({ method: 'PATCH', url: `/posts/${post.id}`, headers: narrowed, payload: { title: 'Defaced' } })
    expect(edit.statusCode).toBe(403)
    expect((await ctx.app.inject({ method: 'DELETE', url: `/posts/${post.id}`, headers: narrowed })).statusCode).toBe(403)
    // Its own posts it may edit.
    const own = (await ctx.app.inject({ method: 'POST', url: '/posts', headers: narrowed, payload: { title: 'Own', content: 'Own' } })).json()
    expect((await ctx.app.inject({ method: 'PATCH', url: `/posts/${own.id}`, headers: narrowed, payload: { title: 'Edited' } })).statusCode).toBe(200)
  })

  it('with posts:moderate it may edit and delete anyone’s post, and so may a moderating service client', async () => {
    const admin = await adminWithToken(ctx.app)
    const moderator = bearer((await login(ctx.app, admin.email, PASSWORD, 'posts:moderate')).access_token)
    const author = await userWithToken(ctx.app)
    const create = () => ctx.app.inject({ method: 'POST', url: '/posts', headers: author.headers, payload: { title: 'Spam', content: 'Spam' } })
    const first = (await create()).json()
    expect((await ctx.app.inject({ method: 'PATCH', url: `/posts/${first.id}`, headers: moderator, payload: { title: 'Moderated' } })).statusCode).toBe(200)
    expect((await ctx.app.inject({ method: 'DELETE', url: `/posts/${first.id}`, headers: moderator })).statusCode).toBe(204)
    const bot = await clientToken(['posts:moderate'])
    const second = (await create()).json()
    expect((await ctx.app.inject({ method: 'DELETE', url: `/posts/${second.id}`, headers: bot.headers })).statusCode).toBe(204)
    // An author whose token lacks posts:write cannot edit even their own post.
    const readOnly = await clientToken(['users:read'])
    const third = (await create()).json()
    expect((await ctx.app.inject({ method: 'DELETE', url: `/posts/${third.id}`, headers: readOnly.headers })).statusCode).toBe(403)
  })
})

describe('GET /users/{id}', () => {
  it('needs users:read for anyone but yourself, admin or not', async () => {
    const user = await userWithToken(ctx.app)
    const other = await userWithToken(ctx.app)
    expect((await ctx.app.inject({ method: 'GET', url: `/users/${other.id}`, headers: user.headers })).statusCode).toBe(403)
    expect((await ctx.app.inject({ method: 'GET', url: `/users/${user.id.toUpperCase()}`, headers: user.headers })).statusCode).toBe(200)
    const reader = await clientToken(['users:read'])
    expect((await ctx.app.inject({ method: 'GET', url: `/users/${other.id}`, headers: reader.headers })).statusCode).toBe(200)
  })
})
