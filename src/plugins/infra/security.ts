// Request-level protections: security headers, CORS for the configured
// browser origins, and rate limits (enabled per route with `config.rateLimit`),
// kept in Redis when the instances share one, else in memory. Body parsing is
// in body-parsers.ts.
import cors from '@fastify/cors'
import rateLimit from '@fastify/rate-limit'
import type { IncomingMessage, ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import helmet from 'helmet'
import { corsOrigins } from '../../config.js'
import { addressBucket } from '../../lib/client-address.js'
import { tooManyRequests } from '../../lib/errors.js'

type Middleware = (request: IncomingMessage, response: ServerResponse, next: (error?: unknown) => void) => void

/** The headers a header-setting middleware sets, collected once from a stand-in response. */
function headersOf(middleware: Middleware): Record<string, string> {
  const headers: Record<string, string> = {}
  const response = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value)
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()]
    }
  }
  middleware({ headers: {} } as IncomingMessage, response as unknown as ServerResponse, (error) => {
    if (error) throw error instanceof Error ? error : new Error('the security headers could not be set', { cause: error })
  })
  return headers
}

export default fp(
  async function securityPlugin(fastify) {
    // Helmet's headers on every response. Their values depend only on this
    // configuration, so helmet's middleware runs once, at start, into a plain
    // object, and each reply gets that object. The @fastify/helmet wrapper
    // builds the middleware anew on every request and sets each header on
    // Node's response one by one: together 12 % of the CPU of a cached post
    // read (see BENCHMARKS.md).
    const securityHeaders = headersOf(
      helmet({
        // An API answers JSON; nothing it serves needs scripts, except the docs
        // page, which sets its own policy.
        contentSecurityPolicy: {
          useDefaults: false,
          directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'self'"] }
        },
        crossOriginResourcePolicy: { policy: 'same-origin' }
      })
    )
    fastify.addHook('onRequest', (_request, reply, done) => {
      reply.headers(securityHeaders)
      done()
    })

    const origins = corsOrigins(fastify.config)
    if (origins.length > 0) {
      await fastify.register(cors, {
        origin: origins,
        methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
        // What a browser client needs to read: new resources, versions, and why it was refused.
        exposedHeaders: ['Location', 'ETag', 'Retry-After', 'WWW-Authenticate'],
        // Bearer tokens, not cookies: browsers never need to send credentials on their own.
        credentials: false,
        maxAge: 600
      })
    }

    const refused = fastify.metrics.counter({
      name: 'blog_api_rate_limited_requests_total',
      help: 'Requests refused (429) by the per-address rate limits, by route pattern.',
      labelNames: ['route']
    })
    await fastify.register(rateLimit, {
      global: false,
      onExceeded: (request) => refused.inc({ route: request.routeOptions.url ?? 'unmatched' }),
      // While Redis is unreachable, requests go uncounted rather than refused; password
      // guesses are still refused then, by the login lockout (503).
      ...(fastify.redis ? { redis: fastify.redis, nameSpace: 'rate-limit:', skipOnError: true } : {}),
      // Counted by the same buckets as the login lockout: IPv4 as itself (also mapped into IPv6), IPv6 by its /64.
      keyGenerator: (request) => addressBucket(request.ip),
      errorResponseBuilder: (_request, context) => tooManyRequests(context.ttl / 1000)
    })
  },
  { name: 'security', dependencies: ['config', 'redis', 'metrics'] }
)
