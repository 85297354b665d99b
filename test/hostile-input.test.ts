// The three classes of input an outside attack turned into 500s (and full
// stack traces at error level): U+0000 and lone surrogates in text, ids in
// spellings other than a plain UUID, and cursors holding dates PostgreSQL
// cannot store. Each is refused by its schema atom (Text, Id) or by the one
// cursor decoder, with a 400 in the contract's shape, and changes nothing.
// test/fuzz.test.ts derives such values from every route's schema; these are
// the cases the attack found, named.
import type { LightMyRequestResponse } from 'fastify'
import { describe, expect, it } from 'vitest'
import { encodeCursor } from '../src/repositories/cursor.js'
import { percentEncode } from './fuzz-values.js'
import { adminWithToken, basicAuth, clientAddress, PASSWORD, serviceClient, uniqueEmail, useApp, userWithToken } from './helper.js'

const ctx = useApp()

const HOSTILE_TEXT = {
  'U+0000': 'before\u0000after',
  'a lone high surrogate': 'before\uD800after',
  'a lone low surrogate': 'before\uDFFFafter',
  'a reversed pair': '\uDE00\uD83D'
}

function expectBadRequest(response: LightMyRequestResponse, field?: string) {
  expect(response.statusCode, response.body).toBe(400)
  expect(response.body).not.toMatch(/\bat .+:\d+:\d+|node_modules|Prisma|invalid byte sequence/)
  if (String(response.headers['content-type']).includes('problem+json')) {
    expect(response.json()).toMatchObject({ type: 'about:blank', status: 400, title: 'Bad Request' })
    if (field) expect(response.json().errors).toEqual([expect.objectContaining({ field })])
  } else {
    expect(response.json()).toMatchObject({ error: 'invalid_request' })
  }
}

describe('text with U+0000 or a lone surrogate is refused, never stored', () => {
  for (const [name, text] of Object.entries(HOSTILE_TEXT)) {
    it(`${name}: in signup, posts, profile, clients and the token endpoint`, async () => {
      const user = await userWithToken(ctx.app)
      const admin = await adminWithToken(ctx.app)
      const before = await ctx.app.prisma.user.count()

      const signup = await ctx.app.inject({
        method: 'POST',
        url: '/auth/signup',
        remoteAddress: clientAddress(),
        payload: { email: uniqueEmail(), full_name: text, password: PASSWORD }
      })
      expectBadRequest(signup, 'full_name')
      const passwordWithIt = await ctx.app.inject({
        method: 'POST',
        url: '/auth/signup',
        remoteAddress: clientAddress(),
        payload: { email: uniqueEmail(), full_name: 'Fine', password: `${PASSWORD}${text}` }
      })
      expectBadRequest(passwordWithIt, 'password')
      expect(await ctx.app.prisma.user.count()).toBe(before)

      for (const payload of [{ title: text, content: 'fine' }, { title: 'fine', content: text }]) {
        expectBadRequest(await ctx.app.inject({ method: 'POST', url: '/posts', headers: user.headers, payload }))
      }
      const post = (await ctx.app.inject({ method: 'POST', url: '/posts', headers: user.headers, payload: { title: 'ok', content: 'ok' } })).json()
      expectBadRequest(await ctx.app.inject({ method: 'PATCH', url: `/posts/${post.id}`, headers: user.headers, payload: { title: text } }), 'title')
      expectBadRequest(await ctx.app.inject({ method: 'PATCH', url: '/users/me', headers: user.headers, payload: { full_name: text } }), 'full_name')
      expectBadRequest(
        await ctx.app.inject({ method: 'POST', url: '/clients', headers: admin.headers, payload: { name: text, scopes: ['users:read'] } }),
        'name'
      )

      // The token endpoint, as a form and as JSON: a 400 (invalid_request, or a problem for an undecodable form).
      const form = (fields: Record<string, string>) =>
        ctx.app.inject({
          method: 'POST',
          url: '/auth/token',
          remoteAddress: clientAddress(),
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          payload: Object.entries(fields).map(([name, value]) => `${name}=${percentEncode(value)}`).join('&')
        })
      expectBadRequest(await form({ grant_type: 'password', username: `a${text}@example.com`, password: PASSWORD }))
      expectBadRequest(await form({ grant_type: 'password', username: user.email, password: text }))
      expectBadRequest(
        await ctx.app.inject({
          method: 'POST',
          url: '/auth/token',
          remoteAddress: clientAddress(),
          payload: { grant_type: 'password', username: text, password: PASSWORD }
        })
      )
      const client = await serviceClient(ctx.app, ['users:read'])
      expectBadRequest(
        await ctx.app.inject({
          method: 'POST',
          url: '/auth/token',
          remoteAddress: clientAddress(),
          headers: { authorization: basicAuth(client.clientId, client.clientSecret) },
          payload: { grant_type: 'client_credentials', scope: text }
        })
      )
      expectBadRequest(await ctx.app.inject({ method: 'POST', url: '/auth/revoke', payload: { token: text } }))
    })
  }

  it('a well-formed pair (an emoji) is text like any other', async () => {
    const user = await userWithToken(ctx.app)
    const created = await ctx.app.inject({ method: 'POST', url: '/posts', headers: user.headers, payload: { title: 'Party 🎉', content: '🎉' } })
    expect(created.statusCode).toBe(201)
    expect(created.json().title).toBe('Party 🎉')
  })
})

describe('ids are plain UUIDs, in paths and filters', () => {
  const spellings = (id: string) => [
    `urn:uuid:${id}`,
    `{${id}}`,
    id.replace(/-/g, ''),
    ` ${id}`,
    `${id}\u0000`,
    `${id.slice(0, -1)}g`
  ]

  it('every other spelling of an id is a 400, wherever an id goes', async () => {
    const admin = await adminWithToken(ctx.app)
    const user = await userWithToken(ctx.app)
    const post = (await ctx.app.inject({ method: 'POST', url: '/posts', headers: user.headers, payload: { title: 't', content: 'c' } })).json()
    const client = await serviceClient(ctx.app, ['users:read'])
    for (const spelling of spellings(post.id)) {
      const encoded = encodeURIComponent(spelling)
      expectBadRequest(await ctx.app.inject({ method: 'GET', url: `/posts/${encoded}` }))
      expectBadRequest(await ctx.app.inject({ method: 'PATCH', url: `/posts/${encoded}`, headers: admin.headers, payload: { title: 'x' } }))
      expectBadRequest(await ctx.app.inject({ method: 'DELETE', url: `/posts/${encoded}`, headers: admin.headers }))
    }
    for (const spelling of spellings(user.id)) {
      const encoded = encodeURIComponent(spelling)
      expectBadRequest(await ctx.app.inject({ method: 'GET', url: `/users/${encoded}`, headers: admin.headers }))
      expectBadRequest(await ctx.app.inject({ method: 'PATCH', url: `/users/${encoded}`, headers: admin.headers, payload: { is_active: true } }))
      expectBadRequest(await ctx.app.inject({ method: 'GET', url: `/posts?author_id=${encoded}` }), 'author_id')
      expectBadRequest(await ctx.app.inject({ method: 'GET', url: `/audit-events?user_id=${encoded}`, headers: admin.headers }), 'user_id')
    }
    for (const spelling of spellings(client.clientId)) {
      const encoded = encodeURIComponent(spelling)
      expectBadRequest(await ctx.app.inject({ method: 'POST', url: `/clients/${encoded}/secret`, headers: admin.headers }))
      expectBadRequest(await ctx.app.inject({ method: 'DELETE', url: `/clients/${encoded}`, headers: admin.headers }))
    }
    // Nothing was changed or deleted.
    expect((await ctx.app.inject({ method: 'GET', url: `/posts/${post.id}` })).json().title).toBe('t')
  })

  it('an upper-case UUID is the same id', async () => {
    const user = await userWithToken(ctx.app)
    const post = (await ctx.app.inject({ method: 'POST', url: '/posts', headers: user.headers, payload: { title: 't', content: 'c' } })).json()
    expect((await ctx.app.inject({ method: 'GET', url: `/posts/${post.id.toUpperCase()}` })).statusCode).toBe(200)
  })
})

describe('cursors decode only to keys the service could have written', () => {
  const forged = (time: string, id = '6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f') => Buffer.from(`${time}|${id}`).toString('base64url')
  const cursors = [
    forged('0000-01-01T00:00:00.000Z'),
    forged('-271821-04-20T00:00:00.000Z'),
    forged('+275760-09-13T00:00:00.000Z'),
    forged('1969-12-31T23:59:59.999Z'),
    forged('2026-02-30T00:00:00.000Z'),
    forged('2026-01-01'),
    forged('2026-01-01T00:00:00.000Z', 'urn:uuid:6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f'),
    forged('2026-01-01T00:00:00.000Z|6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f'),
    Buffer.from('\u0000').toString('base64url')
  ]

  it('on all four lists, a forged cursor is a 400 naming the cursor', async () => {
    const admin = await adminWithToken(ctx.app)
    const lists = ['/posts', '/users', '/clients', '/audit-events']
    for (const list of lists) {
      for (const cursor of cursors) {
        expectBadRequest(await ctx.app.inject({ method: 'GET', url: `${list}?cursor=${cursor}`, headers: admin.headers }), 'cursor')
      }
      // A cursor the service wrote still pages.
      const real = encodeCursor({ createdAt: new Date('2026-01-01T00:00:00.000Z'), id: '6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f' })
      expect((await ctx.app.inject({ method: 'GET', url: `${list}?cursor=${real}`, headers: admin.headers })).statusCode).toBe(200)
    }
  })
})
