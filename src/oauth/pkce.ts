// PKCE (RFC 7636), S256 only: the code's requester proves it is the one that
// started the authorization, with the verifier whose SHA-256 the challenge was.
// `plain` is refused: it protects nothing against a code intercepted together
// with the request that carried the challenge.
import { createHash, timingSafeEqual } from 'node:crypto'

/** RFC 7636 §4.1: 43 to 128 unreserved characters. */
export const CODE_VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/
/** The base64url of a SHA-256: 43 characters. */
export const CODE_CHALLENGE = /^[A-Za-z0-9_-]{43}$/

export const challengeOf = (verifier: string) => createHash('sha256').update(verifier).digest('base64url')

export function verifierMatches(verifier: string, challenge: string): boolean {
  if (!CODE_VERIFIER.test(verifier)) return false
  const expected = Buffer.from(challenge)
  const actual = Buffer.from(challengeOf(verifier))
  return expected.length === actual.length && timingSafeEqual(expected, actual)
}
