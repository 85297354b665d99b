// ID tokens (OpenID Connect Core §2): who signed in, for which client, when
// and how. Signed with the access tokens' current key (its `kid` is in the
// JWKS), but typed `JWT`, not `at+jwt`: the access-token verifier refuses an
// ID token presented as an access token, and `aud` is the client, not the API.
import { createSigner } from 'fast-jwt'
import type { SigningKeys } from '../lib/signing-keys.js'

/** Seconds an ID token is valid: long enough to be validated on arrival, not a session. */
export const ID_TOKEN_TTL = 300

export interface IdTokenClaims {
  /** The user. */
  sub: string
  /** The client it is for. */
  clientId: string
  /** When the user authenticated (seconds since the epoch). */
  authTime: Date
  amr: string[]
  nonce?: string
  /** The session it belongs to (OpenID Connect Front-Channel/Back-Channel Logout's `sid`). */
  sid: string
  /** Profile and email claims, by scope. */
  claims: Record<string, unknown>
}

export function createIdTokenSigner(keys: SigningKeys, issuer: string) {
  const sign = createSigner({
    key: keys.signingKey,
    algorithm: keys.algorithm,
    kid: keys.kid,
    iss: issuer,
    expiresIn: ID_TOKEN_TTL * 1000,
    header: { alg: keys.algorithm, typ: 'JWT' }
  })
  return (token: IdTokenClaims): string =>
    sign({
      ...token.claims,
      sub: token.sub,
      aud: token.clientId,
      azp: token.clientId,
      auth_time: Math.floor(token.authTime.getTime() / 1000),
      amr: token.amr,
      sid: token.sid,
      ...(token.nonce === undefined ? {} : { nonce: token.nonce })
    })
}
