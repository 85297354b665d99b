// TOTP (RFC 6238) as authenticator apps speak it: SHA-1, 6 digits, 30-second
// steps, a 160-bit secret shown in base32. A code is accepted for the current
// step and one step either side (clocks drift, people type slowly); which
// step matched is answered, so the caller can refuse it and every earlier
// step from then on (each code works once, RFC 6238 §5.2).
import { generateSecret, generateURI, verifySync } from 'otplib'

export const TOTP_PERIOD_SECONDS = 30
export const TOTP_DIGITS = 6
/** Steps either side of the current one that still count. */
const DRIFT_STEPS = 1

/** A new secret, base32 (RFC 4648, no padding), 20 random bytes as RFC 4226 §4 recommends. */
export const newTotpSecret = (): string => generateSecret({ length: 20 })

/** The `otpauth://` URI an authenticator app reads from a QR code. */
export function totpUri(input: { issuer: string; account: string; secret: string }): string {
  return generateURI({ issuer: input.issuer, label: input.account, secret: input.secret, algorithm: 'sha1', digits: TOTP_DIGITS, period: TOTP_PERIOD_SECONDS })
}

/** Whether `code` has the shape of a TOTP code (recovery codes do not). */
export const looksLikeTotp = (code: string): boolean => new RegExp(`^\\d{${TOTP_DIGITS}}$`).test(code)

/** The time step (at `nowMs`) whose code `code` is, within the drift allowed; undefined when it is none. */
export function totpStep(secret: string, code: string, nowMs: number): number | undefined {
  if (!looksLikeTotp(code)) return undefined
  const result = verifySync({
    secret,
    token: code,
    epoch: Math.floor(nowMs / 1000),
    period: TOTP_PERIOD_SECONDS,
    digits: TOTP_DIGITS,
    algorithm: 'sha1',
    epochTolerance: DRIFT_STEPS * TOTP_PERIOD_SECONDS
  })
  // The result type covers HOTP too, whose answers have no time step.
  return result.valid && 'timeStep' in result ? result.timeStep : undefined
}
