// Request-level protections: security headers and rate limits (enabled per
// route with `config.rateLimit`). Body parsing is in body-parsers.ts.
import helmet from '@fastify/helmet'
import rateLimit from '@fastify/rate-limit'
import fp from 'fastify-plugin'

export default fp(
  async function securityPlugin(fastify) {
    await fastify.register(helmet, {
      // An API answers JSON; nothing it serves needs scripts, except the docs
      // page, which sets its own policy.
      contentSecurityPolicy: {
        useDefaults: false,
        directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'self'"] }
      },
      crossOriginResourcePolicy: { policy: 'same-origin' }
    })
    await fastify.register(rateLimit, { global: false })
  },
  { name: 'security', dependencies: ['config'] }
)
