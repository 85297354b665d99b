// The key set that signs and verifies access tokens. One current key signs;
// it and the configured previous keys verify, each found by its `kid` (an RFC
// 7638 thumbprint for public keys). Public keys are published as a JWKS.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import type { Config } from '../config.js'

export type SigningAlgorithm = Config['JWT_ALGORITHM']

export interface PublicJwk {
  kty: string
  crv: string
  x: string
  y?: string
  kid: string
  alg: SigningAlgorithm
  use: 'sig'
}

export interface SigningKeys {
  algorithm: SigningAlgorithm
  kid: string
  /** PEM of the private key, or the HMAC secret. */
  signingKey: string
  /** kid → PEM of a public key, or an HMAC secret. */
  verificationKeys: ReadonlyMap<string, string>
  jwks: PublicJwk[]
  /** Where the key came from, for the start-up banner. */
  source: string
}

const MIN_SECRET_BYTES = 32

export class KeyConfigError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'KeyConfigError'
  }
}

/** A PEM given inline, or read from the file it names. */
function readPem(value: string, variable: string): string {
  const trimmed = value.trim()
  if (trimmed.includes('-----BEGIN')) return trimmed.replace(/\\n/g, '\n')
  if (!existsSync(trimmed)) throw new KeyConfigError(`${variable}: no PEM text and no file at "${trimmed}"`)
  try {
    return readFileSync(trimmed, 'utf8').trim()
  } catch (error) {
    const uid = process.getuid?.()
    throw new KeyConfigError(
      `${variable}: the file "${trimmed}" cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})` +
        (uid === undefined ? '' : `; this process runs as uid ${uid}, which must be able to read it`)
    )
  }
}

export function splitList(value: string | undefined): string[] {
  if (!value) return []
  // PEM blocks may be concatenated, or paths and PEMs separated by commas.
  const pems = value.match(/-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----/g)
  if (pems) return pems
  return value.split(',').map((item) => item.trim()).filter(Boolean)
}

const base64url = (data: Buffer | string) => Buffer.from(data).toString('base64url')

function publicJwk(key: KeyObject, algorithm: SigningAlgorithm): PublicJwk {
  const jwk = key.export({ format: 'jwk' })
  const expected = algorithm === 'EdDSA' ? { kty: 'OKP', crv: 'Ed25519' } : { kty: 'EC', crv: 'P-256' }
  if (jwk.kty !== expected.kty || jwk.crv !== expected.crv || typeof jwk.x !== 'string') {
    throw new KeyConfigError(`the key is not an ${expected.crv} key as JWT_ALGORITHM=${algorithm} needs`)
  }
  // RFC 7638: the required members, in lexicographic order, without white space.
  const members = jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x }
  const kid = base64url(createHash('sha256').update(JSON.stringify(members)).digest())
  return { ...members, kid, alg: algorithm, use: 'sig' }
}

function secretKid(secret: string): string {
  return base64url(createHash('sha256').update(`hs256:${secret}`).digest()).slice(0, 16)
}

/** Reads a kept development key, or makes and keeps one (mode 0600). */
export function developmentKey(file: string, make: () => string): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim()
  mkdirSync(path.dirname(file), { recursive: true })
  const value = make()
  writeFileSync(file, value, { mode: 0o600 })
  chmodSync(file, 0o600)
  return value
}

function asymmetricKeys(config: Config, developmentDir: string | undefined): SigningKeys {
  const algorithm = config.JWT_ALGORITHM
  let privatePem: string
  let source: string
  if (config.JWT_PRIVATE_KEY) {
    privatePem = readPem(config.JWT_PRIVATE_KEY, 'JWT_PRIVATE_KEY')
    source = 'JWT_PRIVATE_KEY'
  } else if (developmentDir) {
    const file = path.join(developmentDir, `signing-key-${algorithm.toLowerCase()}.pem`)
    privatePem = developmentKey(file, () => {
      const pair =
        algorithm === 'EdDSA'
          ? generateKeyPairSync('ed25519')
          : generateKeyPairSync('ec', { namedCurve: 'P-256' })
      return pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
    })
    source = `development key ${file}`
  } else {
    throw new KeyConfigError(`JWT_PRIVATE_KEY is required with JWT_ALGORITHM=${algorithm} (PEM text or a file path)`)
  }

  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(privatePem)
  } catch {
    throw new KeyConfigError('JWT_PRIVATE_KEY is not a readable PEM private key')
  }
  const current = publicJwk(createPublicKey(privateKey), algorithm)
  const verificationKeys = new Map<string, string>()
  const jwks: PublicJwk[] = []
  const addPublic = (key: KeyObject) => {
    const jwk = publicJwk(key, algorithm)
    if (verificationKeys.has(jwk.kid)) return
    verificationKeys.set(jwk.kid, key.export({ format: 'pem', type: 'spki' }).toString())
    jwks.push(jwk)
  }
  addPublic(createPublicKey(privateKey))
  for (const item of splitList(config.JWT_PREVIOUS_PUBLIC_KEYS)) {
    try {
      addPublic(createPublicKey(readPem(item, 'JWT_PREVIOUS_PUBLIC_KEYS')))
    } catch (error) {
      if (error instanceof KeyConfigError) throw error
      throw new KeyConfigError('JWT_PREVIOUS_PUBLIC_KEYS holds a value that is not a PEM public key')
    }
  }
  return { algorithm, kid: current.kid, signingKey: privatePem, verificationKeys, jwks, source }
}

function hmacKeys(config: Config, developmentDir: string | undefined): SigningKeys {
  let secret: string
  let source: string
  if (config.JWT_SECRET) {
    secret = config.JWT_SECRET
    source = 'JWT_SECRET'
  } else if (developmentDir) {
    const file = path.join(developmentDir, 'jwt-secret')
    secret = developmentKey(file, () => randomBytes(48).toString('base64url'))
    source = `development secret ${file}`
  } else {
    throw new KeyConfigError('JWT_SECRET is required with JWT_ALGORITHM=HS256')
  }
  const secrets = [secret, ...splitList(config.JWT_PREVIOUS_SECRETS)]
  for (const [index, value] of secrets.entries()) {
    if (Buffer.byteLength(value) < MIN_SECRET_BYTES) {
      const variable = index === 0 ? 'JWT_SECRET' : 'JWT_PREVIOUS_SECRETS'
      throw new KeyConfigError(`${variable} is too weak: at least ${MIN_SECRET_BYTES} bytes are required`)
    }
  }
  const verificationKeys = new Map(secrets.map((value) => [secretKid(value), value] as const))
  return { algorithm: 'HS256', kid: secretKid(secret), signingKey: secret, verificationKeys, jwks: [], source }
}

/**
 * Loads the key set from configuration. `developmentDir` is given only in the
 * embedded development mode, where a missing key is generated and kept there.
 */
export function loadSigningKeys(config: Config, developmentDir?: string): SigningKeys {
  return config.JWT_ALGORITHM === 'HS256' ? hmacKeys(config, developmentDir) : asymmetricKeys(config, developmentDir)
}
