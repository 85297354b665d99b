// Bad input of every kind gets a precise 4xx answer in the contract's shape
// (a problem, or an RFC 6749 error at the token endpoint), never a 5xx, and
// never a silently altered value.
import { connect } from 'node:net'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { describe, expect, it } from 'vitest'
import { buildApp, PASSWORD, uniqueEmail, userWithToken, useApp } from './helper.js'

const ctx = useApp()

function expectProblem(response: LightMyRequestResponse, status: number) {
  expect(response.statusCode, response.body).toBe(status)
  expect(response.headers['content-type']).toContain('application/problem+json')
  expect(response.json()).toMatchObject({ type: 'about:blank', status, title: expect.any(String), detail: expect.any(String) })
}

function expectOAuthInvalidRequest(response: LightMyRequestResponse) {
  expect(response.statusCode, response.body).toBe(400)
  expect(response.headers['content-type']).toContain('application/json')
  expect(response.json()).toMatchObject({ error: 'invalid_request', error_description: expect.any(String) })
}

const json = { 'content-type': 'application/json' }
const form = { 'content-type': 'application/x-www-form-urlencoded' }
const signupBody = () => ({ email: uniqueEmail(), full_name: 'Bad Input', password: PASSWORD })

async function postCount(fastify: FastifyInstance) {
  return fastify.prisma.post.count()
}

describe('body size', () => {
  it('a JSON body over BODY_LIMIT is a 413 problem', async () => {
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/signup',
      headers: json,
      payload: JSON.stringify({ ...signupBody(), full_name: 'x'.repeat(1024 * 1024) })
    })
    expectProblem(response, 413)
  })

  it('a form over 64 KiB is a 413 problem, even at the token endpoint', async () => {
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/token',
      headers: form,
      payload: `grant_type=password&username=a%40example.com&password=${'x'.repeat(65 * 1024)}`
    })
    expectProblem(response, 413)
  })

  it('BODY_LIMIT is configurable', async () => {
    const small = await buildApp({ BODY_LIMIT: 2048 })
    try {
      const response = await small.inject({
        method: 'POST',
        url: '/auth/signup',
        headers: json,
        payload: JSON.stringify({ ...signupBody(), full_name: 'x'.repeat(3000) })
      })
      expectProblem(response, 413)
    } finally {
      await small.close()
    }
  })
})

describe('oversized headers and tokens', () => {
  it('a bearer token over JWT_MAX_LENGTH is refused unparsed with 401', async () => {
    const response = await ctx.app.inject({
      method: 'GET',
      url: '/users/me',
      headers: { authorization: `Bearer ${'a'.repeat(10_000)}.${'b'.repeat(10)}.c` }
    })
    expectProblem(response, 401)
    expect(response.headers['www-authenticate']).toMatch(/^Bearer .*error="invalid_token"/)
  })

  it('a refresh token of absurd length is invalid_grant, not an error', async () => {
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/token',
      headers: form,
      payload: `grant_type=refresh_token&refresh_token=${'r'.repeat(10_000)}`
    })
    expect(response.statusCode).toBe(400)
    expect(response.json()).toMatchObject({ error: expect.stringMatching(/^invalid_(grant|request)$/) })
  })

  it('a token request larger than a token request can be is 413, unread', async () => {
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/token',
      headers: form,
      payload: `grant_type=refresh_token&refresh_token=${'r'.repeat(30_000)}`
    })
    expectProblem(response, 413)
  })

  it('headers over Node’s limit are a 431 problem from the HTTP parser', async () => {
    // Node's HTTP parser enforces the header size (16 KiB), and `inject`
    // bypasses that parser entirely: this needs a real socket.
    const server = await buildApp()
    try {
      await server.listen({ port: 0, host: '127.0.0.1' })
      const address = server.server.address()
      if (address === null || typeof address === 'string') throw new Error('no port')
      const answer = await rawRequest(
        address.port,
        `GET /health HTTP/1.1\r\nHost: localhost\r\nX-Padding: ${'p'.repeat(20_000)}\r\n\r\n`
      )
      const [head, body] = answer.split('\r\n\r\n')
      expect(head).toMatch(/^HTTP\/1\.1 431 /)
      expect(head?.toLowerCase()).toContain('content-type: application/problem+json')
      expect(JSON.parse(body ?? '')).toEqual({
        type: 'about:blank',
        title: 'Request Header Fields Too Large',
        status: 431,
        detail: 'The request headers are too large.'
      })

      const garbage = await rawRequest(address.port, 'NOT HTTP AT ALL\r\n\r\n')
      expect(garbage).toMatch(/^HTTP\/1\.1 400 /)
      expect(garbage).toContain('"status":400')
    } finally {
      await server.close()
    }
  })
})

/** Sends raw bytes and reads until the server closes the connection. */
function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => { resolve(Buffer.concat(chunks).toString('utf8')) })
    socket.end(text)
  })
}

describe('malformed bodies', () => {
  it('malformed JSON is a 400 problem', async () => {
    const response = await ctx.app.inject({ method: 'POST', url: '/auth/signup', headers: json, payload: '{"email": ' })
    expectProblem(response, 400)
  })

  it('an empty JSON body is a 400 problem', async () => {
    const response = await ctx.app.inject({ method: 'POST', url: '/auth/signup', headers: json, payload: '' })
    expectProblem(response, 400)
  })

  it('a JSON body that is not an object is a 400 problem naming the body', async () => {
    for (const payload of ['[]', '"text"', '42', 'null']) {
      const response = await ctx.app.inject({ method: 'POST', url: '/auth/signup', headers: json, payload })
      expectProblem(response, 400)
    }
  })

  it('a __proto__ key (prototype poisoning) is a 400 problem', async () => {
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/signup',
      headers: json,
      payload: `{"email":"${uniqueEmail()}","full_name":"P","password":"${PASSWORD}","__proto__":{"role":"admin"}}`
    })
    expectProblem(response, 400)
  })

  it('a form with a malformed percent-encoding is invalid_request at the token endpoint', async () => {
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/token',
      headers: form,
      payload: 'grant_type=password&username=a%zz&password=x'
    })
    expectOAuthInvalidRequest(response)
  })

  it('a repeated form parameter is invalid_request (RFC 6749 §3.1)', async () => {
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/token',
      headers: form,
      payload: 'grant_type=password&grant_type=client_credentials&username=a%40example.com&password=x'
    })
    expectOAuthInvalidRequest(response)
  })
})

describe('content types', () => {
  it('an unsupported content type is a 415 problem', async () => {
    for (const type of ['text/plain', 'text/xml', 'multipart/form-data; boundary=x', 'application/octet-stream']) {
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/auth/signup',
        headers: { 'content-type': type },
        payload: JSON.stringify(signupBody())
      })
      expectProblem(response, 415)
    }
  })

  it('a body without a content type is a 415 problem', async () => {
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/signup',
      payload: Buffer.from(JSON.stringify(signupBody()))
    })
    expectProblem(response, 415)
  })

  it('a form body on a JSON route is a 415 problem and creates nothing', async () => {
    const user = await userWithToken(ctx.app)
    const before = await postCount(ctx.app)
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/posts',
      headers: { ...user.headers, ...form },
      payload: 'title=Hello&content=World'
    })
    expectProblem(response, 415)
    expect(await postCount(ctx.app)).toBe(before)
  })

  it('a form body to an unknown route is still a 404', async () => {
    const response = await ctx.app.inject({ method: 'POST', url: '/nowhere', headers: form, payload: 'a=b' })
    expectProblem(response, 404)
  })

  it('a JSON body declared in another charset is a 415 problem', async () => {
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/signup',
      headers: { 'content-type': 'application/json; charset=iso-8859-1' },
      payload: JSON.stringify(signupBody())
    })
    expectProblem(response, 415)
  })

  it('a JSON body declared as UTF-8 is accepted', async () => {
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/signup',
      headers: { 'content-type': 'application/json; charset=UTF-8' },
      payload: JSON.stringify(signupBody())
    })
    expect(response.statusCode).toBe(201)
  })
})

describe('invalid UTF-8', () => {
  const invalid = Buffer.from([0xc3, 0x28, 0xff, 0xfe])

  it('a JSON body with invalid UTF-8 is a 400 problem and stores nothing', async () => {
    const email = uniqueEmail()
    const payload = Buffer.concat([
      Buffer.from(`{"email":"${email}","full_name":"Bad `),
      invalid,
      Buffer.from(`","password":"${PASSWORD}"}`)
    ])
    const response = await ctx.app.inject({ method: 'POST', url: '/auth/signup', headers: json, payload })
    expectProblem(response, 400)
    expect(response.json<{ detail: string }>().detail).toContain('UTF-8')
    expect(await ctx.app.prisma.user.count({ where: { email } })).toBe(0)
  })

  it('a post with invalid UTF-8 is refused, not stored with replacement characters', async () => {
    const user = await userWithToken(ctx.app)
    const before = await postCount(ctx.app)
    const payload = Buffer.concat([Buffer.from('{"title":"T","content":"'), invalid, Buffer.from('"}')])
    const response = await ctx.app.inject({ method: 'POST', url: '/posts', headers: { ...user.headers, ...json }, payload })
    expectProblem(response, 400)
    expect(await postCount(ctx.app)).toBe(before)
  })

  it('a form body with invalid UTF-8 bytes is invalid_request at the token endpoint', async () => {
    const payload = Buffer.concat([Buffer.from('grant_type=password&username=a%40example.com&password='), invalid])
    const response = await ctx.app.inject({ method: 'POST', url: '/auth/token', headers: form, payload })
    expectOAuthInvalidRequest(response)
  })

  it('a form value percent-encoding invalid UTF-8 is invalid_request', async () => {
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/token',
      headers: form,
      payload: 'grant_type=password&username=a%40example.com&password=%C3%28%FF'
    })
    expectOAuthInvalidRequest(response)
  })

  it('a revocation form with invalid UTF-8 is a 400, not a 200 that ignored it', async () => {
    const response = await ctx.app.inject({ method: 'POST', url: '/auth/revoke', headers: form, payload: 'token=%FF' })
    expect(response.statusCode).toBe(400)
  })

  it('invalid UTF-8 in a path or query string is a 400 problem', async () => {
    for (const url of ['/posts/%FF', '/posts?cursor=%FF', '/posts?author_id=%C3%28', '/users/%E0%80']) {
      const response = await ctx.app.inject({ method: 'GET', url })
      expect(response.statusCode, url).toBeGreaterThanOrEqual(400)
      expect(response.statusCode, url).toBeLessThan(500)
      expect(response.headers['content-type'], url).toContain('application/problem+json')
    }
  })

  it('a path parameter over the router’s length limit is a 414 problem', async () => {
    const response = await ctx.app.inject({ method: 'GET', url: `/posts/${'a'.repeat(500)}` })
    expectProblem(response, 414)
  })
})

describe('unknown fields', () => {
  it('an unknown JSON property is a 400 problem naming it', async () => {
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/signup',
      headers: json,
      payload: JSON.stringify({ ...signupBody(), role: 'admin' })
    })
    expectProblem(response, 400)
    expect(response.json()).toMatchObject({ errors: [{ field: 'role', message: 'is not an allowed property' }] })
  })

  it('an unknown property in a post update is refused and changes nothing', async () => {
    const user = await userWithToken(ctx.app)
    const created = await ctx.app.inject({
      method: 'POST',
      url: '/posts',
      headers: user.headers,
      payload: { title: 'Original', content: 'Body' }
    })
    const { id } = created.json<{ id: string }>()
    const response = await ctx.app.inject({
      method: 'PATCH',
      url: `/posts/${id}`,
      headers: user.headers,
      payload: { title: 'Changed', author_id: user.id }
    })
    expectProblem(response, 400)
    const after = await ctx.app.inject({ method: 'GET', url: `/posts/${id}` })
    expect(after.json()).toMatchObject({ title: 'Original' })
  })
})
