// Recovery codes: ten one-time codes a user keeps on paper for the day the
// authenticator is lost. Each is 80 random bits written as 16 characters of
// Crockford's base32 in groups of four (`7k2m-x9qa-…`), so it survives being
// read aloud or copied by hand: case, spaces and dashes do not matter, and
// the letters people confuse with digits (o, i, l) read as those digits.
//
// Only a SHA-256 hash is stored, salted with the account's id. With 80 bits
// of entropy a fast hash is enough (as for refresh tokens): no dump can be
// searched for them, and checking one costs one indexed query.
import { createHash, randomBytes } from 'node:crypto'

export const RECOVERY_CODE_COUNT = 10
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'
const LENGTH = 16

/** A new set of recovery codes, as shown to the user. */
export function newRecoveryCodes(count = RECOVERY_CODE_COUNT): string[] {
  return Array.from({ length: count }, () => {
    const bytes = randomBytes(LENGTH)
    // 256 is a multiple of 32: the low five bits of a random byte are uniform.
    const characters = [...bytes].map((byte) => ALPHABET[byte & 31] ?? '0').join('')
    return characters.match(/.{4}/g)?.join('-') ?? characters
  })
}

/** A code as typed, in its one spelling; undefined when it cannot be a recovery code. */
export function normalizeRecoveryCode(typed: string): string | undefined {
  const code = typed.toLowerCase().replace(/[\s-]/g, '').replace(/o/g, '0').replace(/[il]/g, '1')
  return code.length === LENGTH && [...code].every((character) => ALPHABET.includes(character)) ? code : undefined
}

/** What is stored of a code: its hash, salted with the owner's id. */
export function hashRecoveryCode(userId: string, normalized: string): string {
  return createHash('sha256').update(`recovery-code\u0000${userId}\u0000${normalized}`).digest('hex')
}
