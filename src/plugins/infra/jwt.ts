// Registers @fastify/jwt with the service's key set and the RFC 9068 rules:
// tokens are signed with `typ: at+jwt` and a `kid`; verification pins the
// algorithm, picks the key by `kid` from the configured set only (never from
// the token), and checks typ, iss, aud, nbf and exp with a small leeway.
import fastifyJwt, { type TokenOrHeader } from '@fastify/jwt'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { loadSigningKeys, type SigningKeys } from '../../lib/signing-keys.js'

/** The claims of an access token, as signed. */
export interface AccessTokenClaims {
  sub: string
  client_id: string
  scope: string
  /** The session (user logins) or the client secret generation (service clients). */
  sid: string
  /** How the user signed in (RFC 8176: `pwd`, `otp`), so a resource server can demand a second factor. */
  amr?: string[]
  jti: string
  nbf: number
  iat?: number
  exp?: number
}

/** Who is calling, from a verified access token. */
export interface Principal {
  kind: 'user' | 'client'
  /** User id, or the client id for a service client. */
  id: string
  clientId: string
  sessionId: string
  scopes: ReadonlySet<string>
  tokenId: string
  expiresAt: number
  /** When the token was issued (seconds since the epoch). */
  issuedAt?: number
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessTokenClaims
    user: Principal
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    signingKeys: SigningKeys
  }
}

export const ACCESS_TOKEN_TYPE = 'at+jwt'

/** Maps verified claims to the caller. Service clients' tokens have `sub` = `client_id`. */
export function principalFromClaims(claims: AccessTokenClaims): Principal {
  return {
    kind: claims.sub === claims.client_id ? 'client' : 'user',
    id: claims.sub,
    clientId: claims.client_id,
    sessionId: claims.sid,
    scopes: new Set(claims.scope.split(' ').filter(Boolean)),
    tokenId: claims.jti,
    expiresAt: claims.exp ?? 0,
    issuedAt: claims.iat
  }
}

export default fp<{ developmentDir?: string }>(
  async function jwtPlugin(fastify, options) {
    const config = fastify.config
    const keys = loadSigningKeys(config, options.developmentDir)
    fastify.decorate('signingKeys', keys)

    // The key is chosen by `kid` among the configured ones; an unknown kid fails.
    const keyForToken = (
      _request: FastifyRequest,
      token: TokenOrHeader,
      done: (error: Error | null, key: string | undefined) => void
    ) => {
      const header = ('header' in token ? token.header : token) as { kid?: unknown }
      const kid = header.kid
      const key = typeof kid === 'string' ? keys.verificationKeys.get(kid) : undefined
      if (key) done(null, key)
      else done(Object.assign(new Error('unknown key id'), { code: 'UNKNOWN_KID' }), undefined)
    }

    await fastify.register(fastifyJwt, {
      secret: { private: keys.signingKey, public: keyForToken },
      // The key callback needs the header (its kid), not just the claims.
      decode: { complete: true },
      sign: {
        algorithm: keys.algorithm,
        kid: keys.kid,
        iss: config.JWT_ISSUER,
        aud: config.JWT_AUDIENCE,
        expiresIn: config.ACCESS_TOKEN_TTL, // seconds, as @fastify/jwt reads a number
        header: { alg: keys.algorithm, typ: ACCESS_TOKEN_TYPE }
      },
      verify: {
        algorithms: [keys.algorithm],
        allowedIss: config.JWT_ISSUER,
        allowedAud: config.JWT_AUDIENCE,
        checkTyp: ACCESS_TOKEN_TYPE,
        clockTolerance: config.JWT_CLOCK_TOLERANCE * 1000,
        requiredClaims: ['sub', 'client_id', 'scope', 'sid', 'jti', 'iat', 'nbf', 'exp', 'iss', 'aud'],
        // Verified tokens are cached (bounded, never past their `exp`): a repeat
        // request skips the signature check. Revocation is checked after this.
        cache: 5000
      },
      formatUser: principalFromClaims
    })
  },
  { name: 'jwt', dependencies: ['config'] }
)
