// Issues access tokens (RFC 9068 JWTs) through @fastify/jwt's configured
// signer, and verifies a token outside a request (for revocation).
import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import type { Counter } from 'prom-client'
import { type AccessTokenClaims, type Principal, principalFromClaims } from '../infra/jwt.js'

export interface IssuedAccessToken {
  accessToken: string
  expiresIn: number
}

export interface TokenService {
  /** `amr`: how the user signed in (RFC 8176); users' tokens only. */
  issueAccessToken(claims: { sub: string; clientId: string; scope: string; sid: string; amr?: string[] }): IssuedAccessToken
  /** The caller an access token names, or undefined when it is not a valid access token. */
  verifyAccessToken(token: string): Principal | undefined
}

/** What an operator pages on about tokens. */
export interface TokenMetrics {
  /** Spent refresh tokens presented again: a stolen token (or a client bug). */
  refreshTokenReuse: Counter
}

declare module 'fastify' {
  interface FastifyInstance {
    tokens: TokenService
    tokenMetrics: TokenMetrics
  }
}

export default fp(
  async function tokensPlugin(fastify) {
    const { ACCESS_TOKEN_TTL, JWT_MAX_LENGTH } = fastify.config
    const keys = fastify.signingKeys

    const service: TokenService = {
      issueAccessToken({ sub, clientId, scope, sid, amr }) {
        const payload: AccessTokenClaims = {
          sub,
          client_id: clientId,
          scope,
          sid,
          ...(amr ? { amr } : {}),
          jti: randomUUID(),
          nbf: Math.floor(Date.now() / 1000)
        }
        return { accessToken: fastify.jwt.sign(payload), expiresIn: ACCESS_TOKEN_TTL }
      },

      verifyAccessToken(token) {
        if (token.length > JWT_MAX_LENGTH) return undefined
        try {
          const decoded = fastify.jwt.decode<{ header: { kid?: unknown } }>(token, { complete: true })
          const kid = decoded?.header.kid
          const key = typeof kid === 'string' ? keys.verificationKeys.get(kid) : undefined
          if (!key) return undefined
          return principalFromClaims(fastify.jwt.verify<AccessTokenClaims>(token, { key }))
        } catch {
          return undefined
        }
      }
    }
    fastify.decorate('tokens', service)
    fastify.decorate('tokenMetrics', {
      refreshTokenReuse: fastify.metrics.counter({
        name: 'blog_api_refresh_token_reuse_total',
        help: 'Spent refresh tokens presented again (not a retry of the latest refresh); each ended its session as stolen.'
      })
    } satisfies TokenMetrics)
  },
  { name: 'tokens', dependencies: ['config', 'jwt', 'metrics'] }
)
