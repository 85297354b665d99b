// The blog: listing, reading, publishing, editing and deleting posts.
import { describe, expect, it } from 'vitest'
import { adminWithToken, bearer, login, signup, useApp, userWithToken } from './helper.js'

const ctx = useApp()

async function publish(headers: Record<string, string>, title = 'A title', content = 'Some content') {
  const response = await ctx.app.inject({ method: 'POST', url: '/posts', headers, payload: { title, content } })
  expect(response.statusCode).toBe(201)
  return response.json<{ id: string; title: string; content: string; author: { id: string } }>()
}

describe('POST /posts', () => {
  it('publishes a post with a Location and an ETag', async () => {
    const user = await userWithToken(ctx.app, { full_name: 'Author One' })
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/posts',
      headers: user.headers,
      payload: { title: '  Hello  ', content: '\n First post. \n' }
    })
    expect(response.statusCode).toBe(201)
    const post = response.json()
    expect(post).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      title: 'Hello',
      content: 'First post.',
      author: { id: user.id, full_name: 'Author One' },
      created_at: expect.any(String),
      updated_at: expect.any(String)
    })
    expect(response.headers.location).toBe(`/posts/${post.id}`)
    expect(response.headers.etag).toMatch(/^"[^"]+"$/)
  })

  it('validates title and content, after trimming', async () => {
    const user = await userWithToken(ctx.app)
    for (const [payload, field] of [
      [{ title: '   ', content: 'x' }, 'title'],
      [{ title: 'x'.repeat(201), content: 'x' }, 'title'],
      [{ title: 'x', content: 'x'.repeat(50_001) }, 'content'],
      [{ title: 'x' }, 'content'],
      [{ title: 'x', content: 'y', author_id: user.id }, 'author_id']
    ] as const) {
      const response = await ctx.app.inject({ method: 'POST', url: '/posts', headers: user.headers, payload })
      expect(response.statusCode).toBe(400)
      expect((response.json().errors as Array<{ field: string }>).map((e) => e.field)).toContain(field)
    }
    const longest = await ctx.app.inject({
      method: 'POST',
      url: '/posts',
      headers: user.headers,
      payload: { title: ` ${'t'.repeat(200)} `, content: 'c'.repeat(50_000) }
    })
    expect(longest.statusCode).toBe(201)
  })

  it('needs a token with posts:write', async () => {
    const anonymous = await ctx.app.inject({ method: 'POST', url: '/posts', payload: { title: 'x', content: 'y' } })
    expect(anonymous.statusCode).toBe(401)
    const admin = await adminWithToken(ctx.app)
    const readOnly = await login(ctx.app, admin.email, undefined, 'users:read')
    const response = await ctx.app.inject({ method: 'POST', url: '/posts', headers: bearer(readOnly.access_token), payload: { title: 'x', content: 'y' } })
    expect(response.statusCode).toBe(403)
    expect(response.headers['www-authenticate']).toContain('scope="posts:write"')
  })
})

describe('GET /posts/{id}', () => {
  it('returns the post with an ETag, and 304 for a matching If-None-Match', async () => {
    const user = await userWithToken(ctx.app)
    const post = await publish(user.headers)
    const response = await ctx.app.inject({ method: 'GET', url: `/posts/${post.id}` })
    expect(response.statusCode).toBe(200)
    expect(response.json()).toEqual(post)
    const etag = response.headers.etag as string
    const again = await ctx.app.inject({ method: 'GET', url: `/posts/${post.id}`, headers: { 'if-none-match': etag } })
    expect(again.statusCode).toBe(304)
    expect(again.body).toBe('')
  })

  it('an unknown post is 404 and a malformed id 400', async () => {
    const missing = await ctx.app.inject({ method: 'GET', url: '/posts/00000000-0000-4000-8000-000000000000' })
    expect(missing.statusCode).toBe(404)
    expect(missing.headers['content-type']).toContain('application/problem+json')
    const malformed = await ctx.app.inject({ method: 'GET', url: "/posts/1' OR '1'='1" })
    expect(malformed.statusCode).toBe(400)
  })
})

describe('GET /posts', () => {
  it('pages through posts newest first with a cursor, and filters by author', async () => {
    const author = await userWithToken(ctx.app)
    const other = await userWithToken(ctx.app)
    const mine: string[] = []
    for (let i = 0; i < 5; i++) mine.push((await publish(author.headers, `Post ${i}`)).id)
    await publish(other.headers, 'Not mine')

    const first = await ctx.app.inject({ method: 'GET', url: `/posts?limit=2&author_id=${author.id}` })
    expect(first.statusCode).toBe(200)
    const page1 = first.json()
    expect(page1.data.map((p: { id: string }) => p.id)).toEqual([mine[4], mine[3]])
    expect(page1.next_cursor).toEqual(expect.any(String))

    const page2 = (await ctx.app.inject({ method: 'GET', url: `/posts?limit=2&author_id=${author.id}&cursor=${page1.next_cursor}` })).json()
    expect(page2.data.map((p: { id: string }) => p.id)).toEqual([mine[2], mine[1]])
    const page3 = (await ctx.app.inject({ method: 'GET', url: `/posts?limit=2&author_id=${author.id}&cursor=${page2.next_cursor}` })).json()
    expect(page3.data.map((p: { id: string }) => p.id)).toEqual([mine[0]])
    expect(page3.next_cursor).toBeNull()
  })

  it('defaults to 20 per page and refuses limits outside 1 to 100', async () => {
    const response = await ctx.app.inject({ method: 'GET', url: '/posts' })
    expect(response.statusCode).toBe(200)
    expect(response.json().data.length).toBeLessThanOrEqual(20)
    for (const limit of ['0', '101', 'ten']) {
      const bad = await ctx.app.inject({ method: 'GET', url: `/posts?limit=${limit}` })
      expect(bad.statusCode).toBe(400)
      expect(bad.json().errors[0].field).toBe('limit')
    }
  })

  it('refuses a forged cursor and unknown query parameters', async () => {
    const forged = await ctx.app.inject({ method: 'GET', url: `/posts?cursor=${Buffer.from('nonsense').toString('base64url')}` })
    expect(forged.statusCode).toBe(400)
    expect(forged.json().errors).toEqual([{ field: 'cursor', message: 'is not a cursor this service issued' }])
    const unknown = await ctx.app.inject({ method: 'GET', url: '/posts?sort=asc' })
    expect(unknown.statusCode).toBe(400)
  })
})

describe('PATCH /posts/{id}', () => {
  it('the author edits a post; the ETag changes', async () => {
    const user = await userWithToken(ctx.app)
    const post = await publish(user.headers)
    const before = await ctx.app.inject({ method: 'GET', url: `/posts/${post.id}` })
    const response = await ctx.app.inject({
      method: 'PATCH',
      url: `/posts/${post.id}`,
      headers: { ...user.headers, 'if-match': before.headers.etag as string },
      payload: { title: 'Edited' }
    })
    expect(response.statusCode).toBe(200)
    expect(response.json()).toMatchObject({ id: post.id, title: 'Edited', content: post.content })
    expect(response.headers.etag).not.toBe(before.headers.etag)
  })

  it('a stale If-Match is 412 and changes nothing', async () => {
    const user = await userWithToken(ctx.app)
    const post = await publish(user.headers)
    const etag = (await ctx.app.inject({ method: 'GET', url: `/posts/${post.id}` })).headers.etag as string
    await ctx.app.inject({ method: 'PATCH', url: `/posts/${post.id}`, headers: user.headers, payload: { title: 'Newer' } })
    const stale = await ctx.app.inject({
      method: 'PATCH',
      url: `/posts/${post.id}`,
      headers: { ...user.headers, 'if-match': etag },
      payload: { title: 'Overwrite' }
    })
    expect(stale.statusCode).toBe(412)
    expect(stale.json()).toMatchObject({ status: 412, title: 'Precondition Failed' })
    const current = (await ctx.app.inject({ method: 'GET', url: `/posts/${post.id}` })).json()
    expect(current.title).toBe('Newer')
  })

  it('someone else gets 403; an admin may edit', async () => {
    const author = await userWithToken(ctx.app)
    const post = await publish(author.headers)
    const stranger = await userWithToken(ctx.app)
    const refused = await ctx.app.inject({ method: 'PATCH', url: `/posts/${post.id}`, headers: stranger.headers, payload: { title: 'Mine now' } })
    expect(refused.statusCode).toBe(403)
    const admin = await adminWithToken(ctx.app)
    const moderated = await ctx.app.inject({ method: 'PATCH', url: `/posts/${post.id}`, headers: admin.headers, payload: { title: 'Moderated' } })
    expect(moderated.statusCode).toBe(200)
    expect(moderated.json().author.id).toBe(author.id)
  })

  it('an unknown post is 404; an empty or unknown change is 400', async () => {
    const user = await userWithToken(ctx.app)
    const missing = await ctx.app.inject({ method: 'PATCH', url: '/posts/00000000-0000-4000-8000-000000000000', headers: user.headers, payload: { title: 'x' } })
    expect(missing.statusCode).toBe(404)
    const post = await publish(user.headers)
    for (const payload of [{}, { author: 'x' }]) {
      const response = await ctx.app.inject({ method: 'PATCH', url: `/posts/${post.id}`, headers: user.headers, payload })
      expect(response.statusCode).toBe(400)
    }
  })
})

describe('DELETE /posts/{id}', () => {
  it('the author deletes a post', async () => {
    const user = await userWithToken(ctx.app)
    const post = await publish(user.headers)
    const response = await ctx.app.inject({ method: 'DELETE', url: `/posts/${post.id}`, headers: user.headers })
    expect(response.statusCode).toBe(204)
    expect((await ctx.app.inject({ method: 'GET', url: `/posts/${post.id}` })).statusCode).toBe(404)
  })

  it('someone else gets 403 and the post stays; unknown is 404', async () => {
    const author = await userWithToken(ctx.app)
    const post = await publish(author.headers)
    const stranger = await userWithToken(ctx.app)
    expect((await ctx.app.inject({ method: 'DELETE', url: `/posts/${post.id}`, headers: stranger.headers })).statusCode).toBe(403)
    expect((await ctx.app.inject({ method: 'GET', url: `/posts/${post.id}` })).statusCode).toBe(200)
    expect((await ctx.app.inject({ method: 'DELETE', url: '/posts/00000000-0000-4000-8000-000000000000', headers: author.headers })).statusCode).toBe(404)
  })

  it('an admin deletes anyone’s post', async () => {
    const author = await signup(ctx.app)
    const tokens = await login(ctx.app, author.email)
    const post = await publish(bearer(tokens.access_token))
    const admin = await adminWithToken(ctx.app)
    expect((await ctx.app.inject({ method: 'DELETE', url: `/posts/${post.id}`, headers: admin.headers })).statusCode).toBe(204)
  })
})
