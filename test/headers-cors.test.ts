// Security headers (a strict policy for the API, one the docs page can live
// with) and CORS from the CORS_ORIGINS allow-list.
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp, fileDatabase, useApp, userWithToken } from './helper.js'

void fileDatabase()

/** A CSP header as directive → sources. */
function parseCsp(header: unknown): Map<string, string[]> {
  expect(typeof header).toBe('string')
  return new Map(
    String(header)
      .split(';')
      .map((directive) => directive.trim().split(/\s+/))
      .filter(([name]) => name)
      .map(([name = '', ...sources]) => [name, sources])
  )
}

describe('security headers', () => {
  const ctx = useApp()

  it('API answers forbid scripts, framing and sniffing', async () => {
    const response = await ctx.app.inject({ method: 'GET', url: '/posts' })
    const csp = parseCsp(response.headers['content-security-policy'])
    expect(csp.get('default-src')).toEqual(["'none'"])
    expect(csp.get('frame-ancestors')).toEqual(["'none'"])
    expect(response.headers['x-content-type-options']).toBe('nosniff')
    expect(response.headers['x-frame-options']).toBe('SAMEORIGIN')
    expect(response.headers['strict-transport-security']).toMatch(/max-age=\d+/)
    expect(response.headers['referrer-policy']).toBe('no-referrer')
    expect(response.headers['cross-origin-resource-policy']).toBe('same-origin')
    expect(response.headers['x-powered-by']).toBeUndefined()
  })

  it('error answers carry the same headers', async () => {
    const response = await ctx.app.inject({ method: 'GET', url: '/users/me' })
    expect(response.statusCode).toBe(401)
    expect(parseCsp(response.headers['content-security-policy']).get('default-src')).toEqual(["'none'"])
    expect(response.headers['x-content-type-options']).toBe('nosniff')
  })

  it('the docs page gets a policy that allows its own scripts, styles and API calls, and nothing else', async () => {
    const page = await ctx.app.inject({ method: 'GET', url: '/docs/' })
    expect(page.statusCode).toBe(200)
    const csp = parseCsp(page.headers['content-security-policy'])
    // Every script the page loads is its own, and the policy allows exactly that.
    const scripts = [...page.body.matchAll(/<script([^>]*)>/g)].map((match) => match[1] ?? '')
    expect(scripts.length).toBeGreaterThan(0)
    for (const attributes of scripts) expect(attributes).toMatch(/src="\.\/static\/[^"]+\.js"/)
    expect(csp.get('script-src')?.[0]).toBe("'self'")
    expect(csp.get('script-src')).not.toContain("'unsafe-inline'")
    expect(csp.get('style-src')?.[0]).toBe("'self'")
    expect(csp.get('connect-src')).toEqual(["'self'"])
    expect(csp.get('form-action')).toEqual(["'self'"])
    expect(csp.get('frame-ancestors')).toEqual(["'none'"])
    expect(csp.get('object-src')).toEqual(["'none'"])
    // Reachable over plain HTTP too: nothing is upgraded, nothing comes from other hosts.
    expect(csp.has('upgrade-insecure-requests')).toBe(false)
    expect([...csp.values()].flat().filter((source) => !source.startsWith("'") && source !== 'data:')).toEqual([])

    for (const script of scripts) {
      const src = /src="\.\/([^"]+)"/.exec(script)?.[1]
      const asset = await ctx.app.inject({ method: 'GET', url: `/docs/${src}` })
      expect(asset.statusCode).toBe(200)
      expect(asset.headers['content-type']).toMatch(/javascript/)
    }
  })
})

describe('CORS', () => {
  const ALLOWED = 'https://app.example.com'
  const context = {} as { app: FastifyInstance; closed: FastifyInstance }
  beforeAll(async () => {
    context.app = await buildApp({ CORS_ORIGINS: ` ${ALLOWED}, https://admin.example.com/ ` })
    context.closed = await buildApp()
  })
  afterAll(async () => {
    await context.app?.close()
    await context.closed?.close()
  })

  const preflight = (app: FastifyInstance, origin: string) =>
    app.inject({
      method: 'OPTIONS',
      url: '/users/me',
      headers: { origin, 'access-control-request-method': 'PATCH', 'access-control-request-headers': 'authorization, content-type' }
    })

  it('answers the preflight of an allowed origin', async () => {
    for (const origin of [ALLOWED, 'https://admin.example.com']) {
      const response = await preflight(context.app, origin)
      expect(response.statusCode).toBe(204)
      expect(response.headers['access-control-allow-origin']).toBe(origin)
      expect(String(response.headers['access-control-allow-methods'])).toContain('PATCH')
      expect(String(response.headers['access-control-allow-headers']).toLowerCase()).toContain('authorization')
      expect(response.headers['access-control-max-age']).toBe('600')
      expect(response.headers['access-control-allow-credentials']).toBeUndefined()
    }
  })

  it('lets an allowed origin read answers, including the headers a client needs', async () => {
    const user = await userWithToken(context.app)
    const response = await context.app.inject({ method: 'GET', url: '/users/me', headers: { ...user.headers, origin: ALLOWED } })
    expect(response.statusCode).toBe(200)
    expect(response.headers['access-control-allow-origin']).toBe(ALLOWED)
    expect(String(response.headers['access-control-expose-headers'])).toContain('Retry-After')
    expect(String(response.headers.vary)).toMatch(/origin/i)
  })

  it('gives a refused origin no CORS headers, on the preflight or the request', async () => {
    for (const origin of ['https://evil.example.net', 'https://app.example.com.evil.example.net', 'http://app.example.com']) {
      const answer = await preflight(context.app, origin)
      expect(answer.headers['access-control-allow-origin']).toBeUndefined()
      const response = await context.app.inject({ method: 'GET', url: '/posts', headers: { origin } })
      expect(response.statusCode).toBe(200)
      expect(response.headers['access-control-allow-origin']).toBeUndefined()
    }
  })

  it('sends no CORS headers at all when no origin is configured', async () => {
    const answer = await preflight(context.closed, ALLOWED)
    expect(answer.headers['access-control-allow-origin']).toBeUndefined()
    expect(answer.headers['access-control-allow-methods']).toBeUndefined()
    const response = await context.closed.inject({ method: 'GET', url: '/posts', headers: { origin: ALLOWED } })
    expect(response.headers['access-control-allow-origin']).toBeUndefined()
  })
})
