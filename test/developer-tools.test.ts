// What developers run besides the server: the demo seed (`npm run db:seed`),
// the OpenAPI document (`npm run openapi`) and the docs page's own policy.
import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { buildOpenApiDocument } from '../src/cli/openapi.js'
import { ConfigSchema } from '../src/config.js'
import { DEMO_ADMIN, DEMO_CLIENT, DEMO_USER, seedDemoData } from '../src/cli/seed.js'
import { bearer, login, useApp } from './helper.js'

const ctx = useApp()

describe('npm run db:seed', () => {
  it('creates demo accounts that log in, posts and a client, and a second run changes nothing', async () => {
    const first = await seedDemoData(ctx.app)
    expect(first.join('\n')).toContain(`${DEMO_USER.email} / ${DEMO_USER.password}`)
    expect(first.join('\n')).toMatch(/client_secret bapi_cs_/)

    const countAll = async () => ({
      users: await ctx.app.prisma.user.count(),
      posts: await ctx.app.prisma.post.count(),
      clients: await ctx.app.prisma.client.count()
    })
    const before = await countAll()
    const second = await seedDemoData(ctx.app)
    expect(await countAll()).toEqual(before)
    // A secret is shown once, when it is made; never again.
    expect(second.join('\n')).not.toMatch(/bapi_cs_/)

    const user = await login(ctx.app, DEMO_USER.email, DEMO_USER.password)
    const posts = await ctx.app.inject({ method: 'GET', url: '/posts' })
    expect(posts.json().data.length).toBeGreaterThanOrEqual(3)
    const admin = await login(ctx.app, DEMO_ADMIN.email, DEMO_ADMIN.password)
    expect(admin.scope.split(' ')).toContain('clients:manage')
    const clients = await ctx.app.inject({ method: 'GET', url: '/clients', headers: bearer(admin.access_token) })
    expect(clients.json().data).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: DEMO_CLIENT.name, scopes: DEMO_CLIENT.scopes })])
    )
    expect(user.scope).toBe('posts:write')
  })
})

interface Operation {
  operationId?: string
  summary?: string
  description?: string
  tags?: string[]
  security?: unknown[]
  requestBody?: { content: Record<string, { schema: unknown; example?: unknown; examples?: unknown }> }
  responses: Record<string, { description: string; content?: Record<string, { schema: { $ref?: string } }> }>
}

describe('npm run openapi', () => {
  it('builds the document without a database, and every operation is fully described', async () => {
    const document = (await buildOpenApiDocument()) as { paths: Record<string, Record<string, Operation>> }
    const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({ name: `${method.toUpperCase()} ${path}`, operation }))
    )
    expect(operations.length).toBeGreaterThanOrEqual(24)
    // These answer RFC 6749 errors, not problem details.
    const tokenRoutes = ['POST /auth/token', 'POST /auth/revoke', 'POST /oauth/introspect']

    for (const { name, operation } of operations) {
      expect(operation.operationId, name).toMatch(/^[a-z][A-Za-z]+$/)
      expect(operation.summary, name).toBeTruthy()
      expect(operation.description, name).toBeTruthy()
      expect(operation.tags?.length, name).toBe(1)
      if (operation.requestBody) {
        for (const media of Object.values(operation.requestBody.content)) {
          expect(media.example ?? media.examples, `${name} request example`).toBeDefined()
        }
      }
      // The pages a browser opens (the email links' and the sign-in's) answer HTML, their errors included.
      const success = operation.responses['200'] ?? operation.responses['201']
      const page = operation.tags?.[0] === 'Pages' || success?.content?.['text/html'] !== undefined
      for (const [status, response] of Object.entries(operation.responses)) {
        expect(response.description, `${name} ${status}`).not.toBe('Default Response')
        const errorStatus = status === 'default' || Number(status) >= 400
        if (page) {
          // A redirect has no page.
          if (!status.startsWith('3')) expect(response.content?.['text/html'], `${name} ${status}`).toBeDefined()
        } else if (errorStatus && !(tokenRoutes.includes(name) && status.startsWith('4'))) {
          expect(response.content?.['application/problem+json']?.schema.$ref, `${name} ${status}`).toBe(
            '#/components/schemas/Problem'
          )
        }
      }
      if (operation.security) expect(operation.responses['401'], `${name} declares 401`).toBeDefined()
    }
  })
})

describe('the docs page', () => {
  it('has a policy of its own that lets Swagger UI run, while the API keeps its strict one', async () => {
    const docs = await ctx.app.inject({ method: 'GET', url: '/docs' })
    expect(docs.statusCode).toBe(200)
    const policy = docs.headers['content-security-policy']
    expect(policy).toContain("script-src 'self'")
    expect(policy).toContain("connect-src 'self'")
    expect(policy).not.toContain('unsafe-inline')
    expect(policy).not.toContain('upgrade-insecure-requests')

    const api = await ctx.app.inject({ method: 'GET', url: '/posts' })
    expect(api.headers['content-security-policy']).toContain("default-src 'none'")
  })
})

describe('.env.example', () => {
  it('lists every setting of the configuration', async () => {
    const text = await readFile(new URL('../.env.example', import.meta.url), 'utf8')
    const missing = Object.keys(ConfigSchema.properties).filter((name) => !new RegExp(`^(# )?${name}=`, 'm').test(text))
    expect(missing).toEqual([])
  })
})
