// HOTP (RFC 4226) and TOTP (RFC 6238) written out from the RFCs with Node's
// own HMAC, and base32 (RFC 4648): the tests compute codes with these, never
// with the library the service uses, so a mistake in how the service calls
// it cannot hide behind the same mistake in the test. test/mfa-codes.test.ts
// checks these against the RFCs' own vectors.
import { createHmac } from 'node:crypto'

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/** RFC 4648 §6 base32, padding and case ignored. */
export function base32Decode(text: string): Buffer {
  let bits = 0
  let value = 0
  const bytes: number[] = []
  for (const character of text.replace(/=+$/, '').toUpperCase()) {
    const index = BASE32.indexOf(character)
    if (index < 0) throw new Error(`not base32: ${character}`)
    value = (value << 5) | index
    bits += 5
    if (bits >= 8) {
      bits -= 8
      bytes.push((value >> bits) & 0xff)
    }
  }
  return Buffer.from(bytes)
}

/** RFC 4226 §5.3: HMAC-SHA-1 of the 8-byte counter, dynamically truncated, modulo 10^digits. */
export function hotp(key: Buffer, counter: number, digits = 6, algorithm: 'sha1' | 'sha256' | 'sha512' = 'sha1'): string {
  const message = Buffer.alloc(8)
  message.writeBigUInt64BE(BigInt(counter))
  const hmac = createHmac(algorithm, key).update(message).digest()
  const offset = (hmac[hmac.length - 1] ?? 0) & 0x0f
  const binary = hmac.readUInt32BE(offset) & 0x7fffffff
  return String(binary % 10 ** digits).padStart(digits, '0')
}

/** RFC 6238 §4: HOTP with T = floor((unix time - T0) / X), T0 = 0, X = 30 s. */
export const timeStep = (atMs: number, period = 30) => Math.floor(atMs / 1000 / period)

export function totp(key: Buffer, atMs: number, digits = 6, algorithm: 'sha1' | 'sha256' | 'sha512' = 'sha1'): string {
  return hotp(key, timeStep(atMs), digits, algorithm)
}

/** The code of a base32 secret (as the enrolment answers it) at a time, or `steps` steps away from it. */
export const codeAt = (secret: string, atMs: number, steps = 0) => totp(base32Decode(secret), atMs + steps * 30_000)
