// Request-level protections: security headers, CORS for the configured
// browser origins, and rate limits (enabled per route with `config.rateLimit`),
// kept in Redis when the instances share one, else in memory. Body parsing is
// in body-parsers.ts.
import cors from '@fastify/cors'
import rateLimit from '@fastify/rate-limit'
import fp from 'fastify-plugin'
import helmet from 'helmet'
import { corsOrigins } from '../../config.js'
import { tooManyRequests } from '../../lib/errors.js'

export default fp(
  async function securityPlugin(fastify) {
    // Helmet's headers on every response. Helmet's middleware is built once
    // here; the @fastify/helmet wrapper builds it anew on every request, which
    // was 7 % of the CPU a cached post read took.
    const securityHeaders = helmet({
      // An API answers JSON; nothing it serves needs scripts, except the docs
      // page, which sets its own policy.
      contentSecurityPolicy: {
        useDefaults: false,
        directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'self'"] }
      },
      crossOriginResourcePolicy: { policy: 'same-origin' }
    })
    fastify.addHook('onRequest', (request, reply, done) => {
      // Helmet throws on a bad configuration (at start); it never fails a request.
      securityHeaders(request.raw, reply.raw, () => done())
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

    await fastify.register(rateLimit, {
      global: false,
      // While Redis is unreachable, requests go uncounted rather than refused; password
      // guesses are still refused then, by the login lockout (503).
      ...(fastify.redis ? { redis: fastify.redis, nameSpace: 'rate-limit:', skipOnError: true } : {}),
      errorResponseBuilder: (_request, context) => tooManyRequests(context.ttl / 1000)
    })
  },
  { name: 'security', dependencies: ['config', 'redis'] }
)
