// The keys that encrypt second-factor secrets at rest (AES-256-GCM). A TOTP
// secret is what an authenticator app holds: whoever reads it makes valid
// codes, so the database keeps only its ciphertext, and the key lives in
// configuration (MFA_ENCRYPTION_KEY), never in the database. A dump alone
// yields no working secret.
//
// Each ciphertext names the key that sealed it (a key id, not the key), so
// keys rotate: the new key seals, the previous ones
// (MFA_PREVIOUS_ENCRYPTION_KEYS) still open, and `npm run mfa:reencrypt`
// rewrites what they sealed under the new one. Each ciphertext is bound to
// its owner (GCM's additional data), so a row copied onto another account,
// or two accounts' secrets swapped in the database, fail to open.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import path from 'node:path'
import type { Config } from '../config.js'
import { developmentKey, KeyConfigError } from './signing-keys.js'

const KEY_BYTES = 32
const IV_BYTES = 12
const TAG_BYTES = 16
/** The format of a sealed value: `v1.<key id>.<iv>.<ciphertext and tag>`, base64url parts. */
const VERSION = 'v1'

export interface SecretBox {
  /** Encrypts `plaintext` for `owner` under the current key. */
  seal(plaintext: string, owner: string): string
  /** Decrypts what `seal` made for `owner`; throws if it was made for someone else, altered, or under an unknown key. */
  open(sealed: string, owner: string): string
  /** Whether `sealed` was made under the current key (else a re-encryption rewrites it). */
  isCurrent(sealed: string): boolean
  /** Where the current key came from, for operators. */
  readonly source: string
}

export class SealedSecretError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'SealedSecretError'
  }
}

/** 32 bytes, written as base64 (`openssl rand -base64 32`), base64url or hex. */
function decodeKey(value: string, variable: string): Buffer {
  const text = value.trim()
  const bytes = /^[0-9a-fA-F]{64}$/.test(text)
    ? Buffer.from(text, 'hex')
    : /^[A-Za-z0-9+/_-]{43}=?$/.test(text)
      ? Buffer.from(text, 'base64')
      : undefined
  if (bytes?.length !== KEY_BYTES) {
    throw new KeyConfigError(`${variable} must be ${KEY_BYTES} random bytes as base64 or hex, e.g. \`openssl rand -base64 32\``)
  }
  return bytes
}

/** A short public name of a key, stored with what it sealed. */
const keyId = (key: Buffer) => createHash('sha256').update('mfa-encryption-key\u0000').update(key).digest('base64url').slice(0, 11)

/** The additional data of a sealed value: whose it is and what it is for. */
const associatedData = (owner: string) => Buffer.from(`totp-secret\u0000${owner}`)

/**
 * The secret box of the configuration. In development mode (`developmentDir`)
 * a missing key is generated once and kept there; otherwise it is required.
 */
export function loadMfaKeys(config: Pick<Config, 'MFA_ENCRYPTION_KEY' | 'MFA_PREVIOUS_ENCRYPTION_KEYS'>, developmentDir?: string): SecretBox {
  let current: Buffer
  let source: string
  if (config.MFA_ENCRYPTION_KEY) {
    current = decodeKey(config.MFA_ENCRYPTION_KEY, 'MFA_ENCRYPTION_KEY')
    source = 'MFA_ENCRYPTION_KEY'
  } else if (developmentDir) {
    const file = path.join(developmentDir, 'mfa-encryption-key')
    current = decodeKey(developmentKey(file, () => randomBytes(KEY_BYTES).toString('base64')), file)
    source = `development key ${file}`
  } else {
    throw new KeyConfigError('MFA_ENCRYPTION_KEY is required: 32 random bytes, e.g. `openssl rand -base64 32`')
  }
  const previous = (config.MFA_PREVIOUS_ENCRYPTION_KEYS ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)
    .map((item) => decodeKey(item, 'MFA_PREVIOUS_ENCRYPTION_KEYS'))
  const currentId = keyId(current)
  const keys = new Map([...previous, current].map((key) => [keyId(key), key] as const))

  return {
    seal(plaintext, owner) {
      const iv = randomBytes(IV_BYTES)
      const cipher = createCipheriv('aes-256-gcm', current, iv, { authTagLength: TAG_BYTES })
      cipher.setAAD(associatedData(owner))
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()])
      return [VERSION, currentId, iv.toString('base64url'), body.toString('base64url')].join('.')
    },

    open(sealed, owner) {
      const [version, id = '', iv = '', body = '', ...rest] = sealed.split('.')
      if (version !== VERSION || rest.length > 0) throw new SealedSecretError('not a sealed secret of this service')
      const key = keys.get(id)
      if (!key) throw new SealedSecretError(`sealed under key ${id}, which is not configured (MFA_ENCRYPTION_KEY, MFA_PREVIOUS_ENCRYPTION_KEYS)`)
      const ivBytes = Buffer.from(iv, 'base64url')
      const bytes = Buffer.from(body, 'base64url')
      if (ivBytes.length !== IV_BYTES || bytes.length <= TAG_BYTES) throw new SealedSecretError('a sealed secret of the wrong shape')
      const decipher = createDecipheriv('aes-256-gcm', key, ivBytes, { authTagLength: TAG_BYTES })
      decipher.setAAD(associatedData(owner))
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES))
      try {
        return Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8')
      } catch {
        throw new SealedSecretError('the sealed secret does not open: altered, or not this account’s')
      }
    },

    isCurrent: (sealed) => sealed.split('.')[1] === currentId,
    source
  }
}
