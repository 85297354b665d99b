// Posts read from memory are never served stale past a change: edits and
// deletions on this instance, on another instance, or straight in the database
// (an operator's SQL), and author renames, all show on the next reads.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import type { PostView } from '../src/repositories/posts.js'
import { bearer, buildApp, fileDatabase, useApp, userWithToken } from './helper.js'

const ctx = useApp()
let other: FastifyInstance
let sql: pg.Client

beforeAll(async () => {
  other = await buildApp()
  sql = new pg.Client({ connectionString: (await fileDatabase()).url })
  await sql.connect()
})
afterAll(async () => {
  await other?.close()
  await sql?.end()
})

type Author = Awaited<ReturnType<typeof userWithToken>>

async function publish(author: Author, title = 'First title') {
  const response = await ctx.app.inject({ method: 'POST', url: '/posts', headers: author.headers, payload: { title, content: 'Body' } })
  expect(response.statusCode).toBe(201)
  return response.json<{ id: string }>().id
}

const read = (app: FastifyInstance, id: string) => app.inject({ method: 'GET', url: `/posts/${id}` })

/** Reads until the answer satisfies `check` (another instance hears of changes within milliseconds). */
async function eventually(app: FastifyInstance, id: string, check: (response: Awaited<ReturnType<typeof read>>) => boolean) {
  await expect.poll(async () => check(await read(app, id)), { timeout: 2000, interval: 20 }).toBe(true)
}

describe('cached posts', () => {
  it('are read from memory once read, and the author sees their own edit at once', async () => {
    const author = await userWithToken(ctx.app)
    const id = await publish(author)
    const first = await read(ctx.app, id)
    expect(first.statusCode).toBe(200)
    expect(ctx.app.postCache.size).toBeGreaterThan(0)

    const edited = await ctx.app.inject({
      method: 'PATCH',
      url: `/posts/${id}`,
      headers: { ...author.headers, 'if-match': first.headers.etag as string },
      payload: { title: 'Second title' }
    })
    expect(edited.statusCode).toBe(200)
    // No waiting: the same instance forgets the post as it changes it.
    const after = await read(ctx.app, id)
    expect(after.json()).toMatchObject({ title: 'Second title' })
    expect(after.headers.etag).toBe(edited.headers.etag)
    expect(after.headers.etag).not.toBe(first.headers.etag)

    const deleted = await ctx.app.inject({ method: 'DELETE', url: `/posts/${id}`, headers: author.headers })
    expect(deleted.statusCode).toBe(204)
    expect((await read(ctx.app, id)).statusCode).toBe(404)
  })

  it('change on every instance when one of them edits, deletes or renames the author', async () => {
    const author = await userWithToken(ctx.app, { full_name: 'Old Name' })
    const id = await publish(author)
    // The other instance has it in memory.
    expect((await read(other, id)).json()).toMatchObject({ title: 'First title', author: { full_name: 'Old Name' } })

    const edited = await ctx.app.inject({ method: 'PATCH', url: `/posts/${id}`, headers: author.headers, payload: { content: 'Edited' } })
    expect(edited.statusCode).toBe(200)
    await eventually(other, id, (response) => response.json<{ content: string }>().content === 'Edited')
    expect((await read(other, id)).headers.etag).toBe(edited.headers.etag)

    const renamed = await ctx.app.inject({ method: 'PATCH', url: '/users/me', headers: author.headers, payload: { full_name: 'New Name' } })
    expect(renamed.statusCode).toBe(200)
    expect((await read(ctx.app, id)).json()).toMatchObject({ author: { full_name: 'New Name' } })
    await eventually(other, id, (response) => response.json<{ author: { full_name: string } }>().author.full_name === 'New Name')

    expect((await ctx.app.inject({ method: 'DELETE', url: `/posts/${id}`, headers: author.headers })).statusCode).toBe(204)
    await eventually(other, id, (response) => response.statusCode === 404)
  })

  it('change when the database is changed directly, and go when their author is deleted', async () => {
    const author = await userWithToken(ctx.app)
    const id = await publish(author)
    expect((await read(ctx.app, id)).statusCode).toBe(200)
    expect((await read(other, id)).statusCode).toBe(200)

    await sql.query(`UPDATE posts SET title = 'Fixed by an operator', version = version + 1 WHERE id = $1`, [id])
    for (const app of [ctx.app, other]) {
      await eventually(app, id, (response) => response.json<{ title: string }>().title === 'Fixed by an operator')
    }

    const gone = await ctx.app.inject({
      method: 'DELETE',
      url: '/users/me',
      headers: author.headers,
      payload: { current_password: author.password }
    })
    expect(gone.statusCode).toBe(204)
    expect((await read(ctx.app, id)).statusCode).toBe(404)
    await eventually(other, id, (response) => response.statusCode === 404)
  })

  it('are not remembered from a read that raced with a change', async () => {
    const author = await userWithToken(ctx.app)
    const id = await publish(author)
    const stale: PostView = { dto: { id, title: 'Stale' } as PostView['dto'], etag: '"stale"', authorId: author.id }

    // A lookup reads the old row; the post changes before the lookup finishes.
    let finishLookup = (_post: PostView) => {}
    const lookup = ctx.app.postCache.get(id, () => new Promise<PostView>((resolve) => (finishLookup = resolve)))
    ctx.app.postCache.forgetPost(id)
    finishLookup(stale)
    expect(await lookup).toBe(stale)

    // The next read goes to the database instead of serving what that lookup saw.
    const response = await read(ctx.app, id)
    expect(response.json()).toMatchObject({ title: 'First title' })
  })
})

describe('reading with a token', () => {
  it('needs none, but a token that is sent must be valid', async () => {
    const author = await userWithToken(ctx.app)
    const id = await publish(author)
    for (const url of [`/posts/${id}`, '/posts?limit=1']) {
      expect((await ctx.app.inject({ method: 'GET', url })).statusCode).toBe(200)
      expect((await ctx.app.inject({ method: 'GET', url, headers: author.headers })).statusCode).toBe(200)

      for (const headers of [bearer('not.a.token'), bearer(`${author.tokens.access_token}x`), { authorization: 'Basic Zm9vOmJhcg==' }]) {
        const refused = await ctx.app.inject({ method: 'GET', url, headers })
        expect(refused.statusCode).toBe(401)
        expect(refused.headers['content-type']).toContain('application/problem+json')
        expect(refused.headers['www-authenticate']).toMatch(/^Bearer /)
      }
    }
  })

  it('refuses a token revoked after it was last used', async () => {
    const author = await userWithToken(ctx.app)
    const id = await publish(author)
    expect((await ctx.app.inject({ method: 'GET', url: `/posts/${id}`, headers: author.headers })).statusCode).toBe(200)
    expect((await ctx.app.inject({ method: 'POST', url: '/auth/logout', headers: author.headers })).statusCode).toBe(204)
    const refused = await ctx.app.inject({ method: 'GET', url: `/posts/${id}`, headers: author.headers })
    expect(refused.statusCode).toBe(401)
    expect(refused.headers['www-authenticate']).toContain('error="invalid_token"')
  })
})

describe('a verified token', () => {
  it('stops working when it expires, though it was verified before', async () => {
    const app = await buildApp({ ACCESS_TOKEN_TTL: 1, JWT_CLOCK_TOLERANCE: 0 })
    try {
      const user = await userWithToken(app)
      expect((await app.inject({ method: 'GET', url: '/users/me', headers: user.headers })).statusCode).toBe(200)
      await new Promise((resolve) => setTimeout(resolve, 2100))
      const expired = await app.inject({ method: 'GET', url: '/users/me', headers: user.headers })
      expect(expired.statusCode).toBe(401)
      expect(expired.json()).toMatchObject({ detail: 'The access token expired.' })
    } finally {
      await app.close()
    }
  })
})
