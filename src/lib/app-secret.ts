// The service's own secret (APP_SECRET): the key of the HMACs it uses to make
// values it can recompute or check later without storing them — refresh-token
// successors (so a retried refresh gets the same token again) and device
// cookies (so a trusted device is recognised). Earlier secrets
// (APP_PREVIOUS_SECRETS) still verify, so a rotation does not untrust every
// device at once. In development mode a secret is generated once into .data/.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import path from 'node:path'
import type { Config } from '../config.js'
import { developmentKey, KeyConfigError, splitList } from './signing-keys.js'

const MIN_SECRET_BYTES = 32

export interface AppSecret {
  /** A MAC of `parts` under the current secret, for `purpose` (base64url). */
  mac(purpose: string, ...parts: string[]): string
  /** Whether `mac` is the MAC of `parts` under the current or an earlier secret. */
  verify(mac: string, purpose: string, ...parts: string[]): boolean
  /** Where the secret came from, for the start-up banner. */
  readonly source: string
}

function macWith(secret: string, purpose: string, parts: string[]): Buffer {
  // Purpose and parts are joined with a separator no part may contain, so two inputs never collide.
  return createHmac('sha256', secret).update([purpose, ...parts].join('\u0000')).digest()
}

export function loadAppSecret(config: Config, developmentDir?: string): AppSecret {
  let secret: string
  let source: string
  if (config.APP_SECRET) {
    secret = config.APP_SECRET
    source = 'APP_SECRET'
  } else if (developmentDir) {
    const file = path.join(developmentDir, 'app-secret')
    secret = developmentKey(file, () => randomBytes(48).toString('base64url'))
    source = `development secret ${file}`
  } else {
    throw new KeyConfigError('APP_SECRET is required: at least 32 random bytes, e.g. `openssl rand -base64 48`')
  }
  const previous = splitList(config.APP_PREVIOUS_SECRETS)
  for (const [index, value] of [secret, ...previous].entries()) {
    if (Buffer.byteLength(value) < MIN_SECRET_BYTES) {
      throw new KeyConfigError(`${index === 0 ? 'APP_SECRET' : 'APP_PREVIOUS_SECRETS'} is too weak: at least ${MIN_SECRET_BYTES} bytes are required`)
    }
  }
  const all = [secret, ...previous]
  return {
    mac: (purpose, ...parts) => macWith(secret, purpose, parts).toString('base64url'),
    verify(mac, purpose, ...parts) {
      // Compared as text, not decoded: base64url has other spellings of the same bytes
      // (the unused low bits of the last character), and only the one the service wrote counts.
      const given = Buffer.from(mac)
      return all.some((key) => {
        const expected = Buffer.from(macWith(key, purpose, parts).toString('base64url'))
        return given.length === expected.length && timingSafeEqual(given, expected)
      })
    },
    source
  }
}
