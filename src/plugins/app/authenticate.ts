// Authentication and authorization hooks for routes to declare:
//   onRequest: [fastify.authenticate, fastify.requireScope('posts:write')]
// A verified, unrevoked access token becomes `request.user` (a Principal).
// Nothing here touches the database: revocation is an in-memory lookup.
//
// A token verified once is remembered (its exact text, until it expires), so a
// client's next requests skip @fastify/jwt: its per-request work (merging
// options, decoding the token, hashing it for fast-jwt's cache, building the
// principal) was the largest single cost of a cached post read. Revocation is
// still checked on every request.
//
// What an authenticated route answers is the caller's own (an account, a
// client secret, the audit trail): it is sent with `Cache-Control: no-store`.
// And every authenticated write (any method but GET and HEAD) counts against
// the caller's per-account write limit (WRITE_RATE_LIMIT_MAX per
// WRITE_RATE_LIMIT_WINDOW), attached here to each such route as it is
// declared, so no write route can be left without it.
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { LRUCache } from 'lru-cache'
import { BearerError, forbidden } from '../../lib/errors.js'
import type { ScopeName } from '../../lib/scopes.js'
import type { Principal } from '../infra/jwt.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Requires a valid bearer access token; sets `request.user`. */
    authenticate: onRequestAsyncHookHandler
    /** For public routes: no Authorization header is fine, but one that is sent must hold a valid token. */
    authenticateIfPresent: onRequestAsyncHookHandler
    /** Requires the token to carry `scope` (use after `authenticate`). */
    requireScope(scope: ScopeName): onRequestAsyncHookHandler
    /** Requires a token of a user, not of a service client (use after `authenticate`). */
    requireUser: onRequestAsyncHookHandler
  }
}

// RFC 6750 §2.1: "Bearer" 1*SP b64token.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i

/** Verified tokens remembered at once (least recently used first out). */
const VERIFIED_TOKENS = 10_000

function isExpired(error: unknown): boolean {
  const code = (error as { code?: unknown }).code
  return code === 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED' || code === 'FAST_JWT_EXPIRED'
}

export default fp(
  async function authenticatePlugin(fastify) {
    const realm = fastify.config.JWT_AUDIENCE
    const maxLength = fastify.config.JWT_MAX_LENGTH
    const refuse = (detail: string) => new BearerError('invalid_token', detail, { realm })
    const verified = new LRUCache<string, Principal>({ max: VERIFIED_TOKENS })

    async function principalOf(request: FastifyRequest, token: string): Promise<Principal> {
      const known = verified.get(token)
      if (known && known.expiresAt * 1000 > Date.now()) return known
      try {
        await request.jwtVerify()
      } catch (error) {
        throw refuse(isExpired(error) ? 'The access token expired.' : 'The access token is invalid.')
      }
      const principal = request.user
      verified.set(token, principal, { ttl: Math.max(principal.expiresAt * 1000 - Date.now(), 1) })
      return principal
    }

    /** Sets `request.user` from the bearer token, or refuses. */
    async function verifyBearer(request: FastifyRequest) {
      const header = request.headers.authorization
      if (!header || !/^Bearer\b/i.test(header)) {
        throw new BearerError('missing', 'An access token is required.', { realm })
      }
      const token = BEARER.exec(header)?.[1]
      if (!token) throw refuse('The Authorization header must be "Bearer <token>".')
      if (token.length > maxLength) throw refuse('The access token is too long.')
      const principal = await principalOf(request, token)
      const { sessionId, tokenId } = principal
      if (fastify.revocations.isRevoked(sessionId) || fastify.revocations.isRevoked(tokenId)) {
        throw refuse('The access token was revoked.')
      }
      request.user = principal
    }

    fastify.decorate('authenticate', async function authenticate(request: FastifyRequest, reply: FastifyReply) {
      await verifyBearer(request)
      reply.header('cache-control', 'no-store')
    })

    // A public read stays cacheable: a token sent with it only has to be valid.
    fastify.decorate('authenticateIfPresent', async function authenticateIfPresent(request: FastifyRequest) {
      if (request.headers.authorization !== undefined) await verifyBearer(request)
    })

    const limitWrites = fastify.rateLimit({
      max: fastify.config.WRITE_RATE_LIMIT_MAX,
      timeWindow: fastify.config.WRITE_RATE_LIMIT_WINDOW * 1000,
      keyGenerator: (request) => `writes:${request.user.id}`
    })
    fastify.addHook('onRoute', (route) => {
      const methods = [route.method].flat()
      const hooks = [route.onRequest ?? []].flat()
      const at = hooks.indexOf(fastify.authenticate)
      if (at < 0 || methods.every((method) => method === 'GET' || method === 'HEAD')) return
      route.onRequest = [...hooks.slice(0, at + 1), limitWrites, ...hooks.slice(at + 1)]
    })

    fastify.decorate('requireScope', (scope: ScopeName) =>
      async function requireScope(request: FastifyRequest) {
        if (!request.user.scopes.has(scope)) {
          throw new BearerError('insufficient_scope', `This request needs the "${scope}" scope.`, { realm, scope })
        }
      }
    )

    fastify.decorate('requireUser', async function requireUser(request: FastifyRequest) {
      if (request.user.kind !== 'user') throw forbidden('This route is for user accounts, not service clients.')
    })
  },
  { name: 'authenticate', dependencies: ['config', 'jwt', 'revocations', 'security'] }
)
