// Opaque secrets (refresh tokens, client secrets, authorization codes, browser
// sign-in sessions, the tokens of links sent by email): 256 random bits behind
// a recognisable prefix, so secret scanners can spot a leaked one. They are
// stored only as SHA-256 hashes: with that much entropy a fast hash is safe,
// and lookups stay one indexed query.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

export const REFRESH_TOKEN_PREFIX = 'bapi_rt_'
export const CLIENT_SECRET_PREFIX = 'bapi_cs_'
export const AUTHORIZATION_CODE_PREFIX = 'bapi_ac_'
export const BROWSER_SESSION_PREFIX = 'bapi_bs_'
export const RESET_TOKEN_PREFIX = 'bapi_pr_'
export const EMAIL_TOKEN_PREFIX = 'bapi_ev_'

export function newOpaqueToken(prefix: string): { token: string; hash: string } {
  const token = prefix + randomBytes(32).toString('base64url')
  return { token, hash: hashOpaqueToken(token) }
}

export function hashOpaqueToken(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

export function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex')
  const right = Buffer.from(b, 'hex')
  return left.length === right.length && timingSafeEqual(left, right)
}
