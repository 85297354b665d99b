// Service routes, the docs, and the error shapes shared by every route.
import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import app, { serverOptions } from '../src/app.js'
import { testConfig, useApp } from './helper.js'

const ctx = useApp()

describe('service routes', () => {
  it('the index points to the docs', async () => {
    const response = await ctx.app.inject({ method: 'GET', url: '/' })
    expect(response.statusCode).toBe(200)
    expect(response.json()).toEqual({ message: expect.any(String), docs: '/docs' })
  })

  it('health answers ok without the database', async () => {
    const response = await ctx.app.inject({ method: 'GET', url: '/health' })
    expect(response.statusCode).toBe(200)
    expect(response.json()).toEqual({ status: 'ok' })
  })

  it('ready answers when the database answers', async () => {
    const response = await ctx.app.inject({ method: 'GET', url: '/ready' })
    expect(response.statusCode).toBe(200)
    expect(response.json()).toEqual({ status: 'ready' })
  })

  it('the JWKS publishes the Ed25519 public key that verifies tokens', async () => {
    const response = await ctx.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
    expect(response.statusCode).toBe(200)
    const { keys } = response.json<{ keys: Array<Record<string, string>> }>()
    expect(keys).toHaveLength(1)
    expect(keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig', kid: expect.any(String) })
    expect(keys[0]).not.toHaveProperty('d')
  })

  it('sends security headers', async () => {
    const response = await ctx.app.inject({ method: 'GET', url: '/health' })
    expect(response.headers['x-content-type-options']).toBe('nosniff')
    expect(response.headers['content-security-policy']).toContain("default-src 'none'")
  })
})

describe('docs', () => {
  it('serves Swagger UI at /docs, titled after the service', async () => {
    const response = await ctx.app.inject({ method: 'GET', url: '/docs/' })
    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toContain('text/html')
    expect(response.body).toContain('swagger')
    expect(response.body).toContain('<title>Blog API docs</title>')
  })

  it('the OpenAPI document has one security scheme per way of logging in, both against /auth/token', async () => {
    const response = await ctx.app.inject({ method: 'GET', url: '/docs/json' })
    expect(response.statusCode).toBe(200)
    const document = response.json()
    expect(document.openapi).toMatch(/^3\./)
    // Separate schemes: logging in with one does not mark the others as authorized in Swagger UI.
    const schemes = document.components.securitySchemes
    expect(Object.keys(schemes)).toEqual(['browserSignIn', 'userPassword', 'serviceClient'])
    expect(schemes.browserSignIn.flows.authorizationCode).toMatchObject({ authorizationUrl: '/oauth/authorize', tokenUrl: '/auth/token' })
    expect(Object.keys(schemes.userPassword.flows)).toEqual(['password'])
    expect(Object.keys(schemes.serviceClient.flows)).toEqual(['clientCredentials'])
    expect(schemes.userPassword.flows.password.tokenUrl).toBe('/auth/token')
    expect(schemes.serviceClient.flows.clientCredentials.tokenUrl).toBe('/auth/token')
    expect(Object.keys(schemes.userPassword.flows.password.scopes)).toEqual([
      'posts:write',
      'posts:moderate',
      'users:read',
      'users:write',
      'clients:manage',
      'audit:read',
      'openid',
      'profile',
      'email'
    ])
    // Its own name and version, and no server list: clients call the origin they loaded it from.
    expect(document.info).toMatchObject({ title: 'Blog API', version: '0.1.0' })
    expect(document).not.toHaveProperty('servers')
  })

  it('a query parameter with a default is optional, and a public route declares no security', async () => {
    const document = (await ctx.app.inject({ method: 'GET', url: '/docs/json' })).json()
    const withDefaults = Object.values(document.paths as Record<string, Record<string, { parameters?: Array<{ name: string; required?: boolean; schema: { default?: unknown } }> }>>)
      .flatMap((methods) => Object.values(methods))
      .flatMap((operation) => operation.parameters ?? [])
      .filter((parameter) => parameter.schema.default !== undefined)
    expect(withDefaults.map((parameter) => parameter.name)).toContain('limit')
    for (const parameter of withDefaults) expect(parameter.required, parameter.name).toBe(false)
    expect(document.paths['/posts'].get).not.toHaveProperty('security')
    expect(document.paths['/posts/{id}'].get).not.toHaveProperty('security')
    // The route itself still fills the default in.
    expect((await ctx.app.inject({ method: 'GET', url: '/posts' })).statusCode).toBe(200)
  })

  it('lists every route with its request and response schemas', async () => {
    const document = (await ctx.app.inject({ method: 'GET', url: '/docs/json' })).json()
    const routes = Object.entries(document.paths as Record<string, Record<string, unknown>>).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`)
    )
    for (const route of [
      'GET /',
      'GET /health',
      'GET /ready',
      'GET /.well-known/jwks.json',
      'POST /auth/signup',
      'POST /auth/token',
      'POST /auth/revoke',
      'POST /auth/logout',
      'GET /users/me',
      'PATCH /users/me',
      'PUT /users/me/password',
      'DELETE /users/me',
      'GET /users/{id}',
      'GET /users',
      'PATCH /users/{id}',
      'GET /posts',
      'GET /posts/{id}',
      'POST /posts',
      'PATCH /posts/{id}',
      'DELETE /posts/{id}',
      'POST /clients',
      'GET /clients',
      'POST /clients/{id}/secret',
      'DELETE /clients/{id}'
    ]) {
      expect(routes).toContain(route)
    }
    const createPost = document.paths['/posts'].post
    expect(createPost.requestBody.content['application/json'].schema).toBeDefined()
    expect(createPost.responses['201']).toBeDefined()
    expect(createPost.security).toEqual([{ browserSignIn: ['posts:write'] }, { userPassword: ['posts:write'] }, { serviceClient: ['posts:write'] }])
    const token = document.paths['/auth/token'].post
    expect(Object.keys(token.requestBody.content)).toContain('application/x-www-form-urlencoded')
  })
})

describe('errors', () => {
  it('an unknown route is a 404 problem', async () => {
    const response = await ctx.app.inject({ method: 'GET', url: '/nope?x=1' })
    expect(response.statusCode).toBe(404)
    expect(response.headers['content-type']).toContain('application/problem+json')
    expect(response.json()).toEqual({ type: 'about:blank', title: 'Not Found', status: 404, detail: 'No route for GET /nope.' })
  })

  it('malformed JSON is a 400 problem', async () => {
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/signup',
      headers: { 'content-type': 'application/json' },
      payload: '{"email": '
    })
    expect(response.statusCode).toBe(400)
    expect(response.headers['content-type']).toContain('application/problem+json')
    expect(response.json()).toMatchObject({ status: 400, title: 'Bad Request' })
  })

  it('an unsupported content type is a 415 problem', async () => {
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/signup',
      headers: { 'content-type': 'text/xml' },
      payload: '<signup/>'
    })
    expect(response.statusCode).toBe(415)
    expect(response.json()).toMatchObject({ status: 415, title: 'Unsupported Media Type' })
  })

  it('a body over the limit is a 413 problem', async () => {
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/signup',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ email: 'a@example.com', full_name: 'x'.repeat(2 * 1024 * 1024), password: 'x' })
    })
    expect(response.statusCode).toBe(413)
    expect(response.json()).toMatchObject({ status: 413 })
  })

  it('an unexpected failure is a 500 problem that reveals nothing', async () => {
    const config = await testConfig()
    const fastify = Fastify(serverOptions(config))
    await fastify.register(async (instance) => {
      await instance.register(app, { config })
      instance.get('/boom', async () => {
        throw new Error('connection string postgres://secret@db leaked')
      })
    })
    try {
      const response = await fastify.inject({ method: 'GET', url: '/boom' })
      expect(response.statusCode).toBe(500)
      expect(response.json()).toEqual({
        type: 'about:blank',
        title: 'Internal Server Error',
        status: 500,
        detail: 'An unexpected error occurred.'
      })
      expect(response.body).not.toContain('secret')
      expect(response.body).not.toContain('at ')
    } finally {
      await fastify.close()
    }
  })
})

describe('database outage', () => {
  const down = useApp({ DATABASE_URL: 'postgresql://nobody:nothing@127.0.0.1:1/none' })

  it('ready answers 503 while health stays 200', async () => {
    const ready = await down.app.inject({ method: 'GET', url: '/ready' })
    expect(ready.statusCode).toBe(503)
    expect(ready.headers['content-type']).toContain('application/problem+json')
    const health = await down.app.inject({ method: 'GET', url: '/health' })
    expect(health.statusCode).toBe(200)
  })

  it('routes that need the database answer a 503 problem, not a 500', async () => {
    const response = await down.app.inject({ method: 'GET', url: '/posts' })
    expect(response.statusCode).toBe(503)
    expect(response.headers['retry-after']).toBe('5')
    expect(response.json()).toMatchObject({ status: 503, title: 'Service Unavailable' })
    expect(response.body).not.toContain('127.0.0.1')
  })
})

describe('DOCS_ENABLED=false', () => {
  const noDocs = useApp({ DOCS_ENABLED: false })

  it('serves neither the docs page nor the document, and the index points to neither', async () => {
    expect((await noDocs.app.inject({ method: 'GET', url: '/docs' })).statusCode).toBe(404)
    expect((await noDocs.app.inject({ method: 'GET', url: '/docs/json' })).statusCode).toBe(404)
    expect((await noDocs.app.inject({ method: 'GET', url: '/' })).json()).toEqual({ message: expect.any(String) })
  })
})
