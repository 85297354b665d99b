// Signing keys: rotation without logging anyone out, the JWKS, HMAC mode,
// development keys, and refusing to start with a missing or weak key.
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.js'
import { loadSigningKeys } from '../src/lib/signing-keys.js'
import { bearer, buildApp, decodeJwt, fileDatabase, login, signup } from './helper.js'

const pem = (key: { export(options: { format: 'pem'; type: 'pkcs8' | 'spki' }): string | Buffer }, type: 'pkcs8' | 'spki') =>
  key.export({ format: 'pem', type }).toString()

void fileDatabase()
const apps: Array<{ close(): Promise<unknown> }> = []
afterAll(async () => {
  for (const app of apps) await app.close()
})
async function appWith(overrides: Parameters<typeof buildApp>[0]) {
  const app = await buildApp(overrides)
  apps.push(app)
  return app
}

describe('key rotation', () => {
  it('tokens signed with the previous key keep working after a rotation', async () => {
    const oldPair = generateKeyPairSync('ed25519')
    const newPair = generateKeyPairSync('ed25519')
    const before = await appWith({ JWT_PRIVATE_KEY: pem(oldPair.privateKey, 'pkcs8') })
    const user = await signup(before)
    const oldToken = (await login(before, user.email)).access_token

    const after = await appWith({
      JWT_PRIVATE_KEY: pem(newPair.privateKey, 'pkcs8'),
      JWT_PREVIOUS_PUBLIC_KEYS: pem(oldPair.publicKey, 'spki')
    })
    expect((await after.inject({ method: 'GET', url: '/users/me', headers: bearer(oldToken) })).statusCode).toBe(200)
    const newToken = (await login(after, user.email)).access_token
    expect(decodeJwt(newToken).header.kid).not.toBe(decodeJwt(oldToken).header.kid)
    const jwks = (await after.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json()
    expect(jwks.keys.map((key: { kid: string }) => key.kid)).toEqual([decodeJwt(newToken).header.kid, decodeJwt(oldToken).header.kid])

    // Once the old key is dropped from the configuration, its tokens are refused.
    const later = await appWith({ JWT_PRIVATE_KEY: pem(newPair.privateKey, 'pkcs8') })
    expect((await later.inject({ method: 'GET', url: '/users/me', headers: bearer(oldToken) })).statusCode).toBe(401)
  })
})

describe('algorithms', () => {
  it('ES256 signs and verifies, and the JWKS publishes a P-256 key', async () => {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const app = await appWith({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: pem(pair.privateKey, 'pkcs8') })
    const user = await signup(app)
    const token = (await login(app, user.email)).access_token
    expect(decodeJwt(token).header.alg).toBe('ES256')
    expect((await app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) })).statusCode).toBe(200)
    const { keys } = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json()
    expect(keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256' })
  })

  it('HS256 works with a strong secret and publishes no keys', async () => {
    const app = await appWith({ JWT_ALGORITHM: 'HS256', JWT_SECRET: 'x'.repeat(32) })
    const user = await signup(app)
    const token = (await login(app, user.email)).access_token
    expect(decodeJwt(token).header).toMatchObject({ alg: 'HS256', typ: 'at+jwt', kid: expect.any(String) })
    expect((await app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) })).statusCode).toBe(200)
    expect((await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json()).toEqual({ keys: [] })
  })

  it('an EdDSA token is refused by an HS256 deployment, and the other way round', async () => {
    const eddsa = await appWith({})
    const user = await signup(eddsa)
    const token = (await login(eddsa, user.email)).access_token
    const hmac = await appWith({ JWT_ALGORITHM: 'HS256', JWT_SECRET: 'y'.repeat(40) })
    expect((await hmac.inject({ method: 'GET', url: '/users/me', headers: bearer(token) })).statusCode).toBe(401)
  })
})

describe('refusing to start', () => {
  const base = { DATABASE_URL: 'postgresql://localhost/x', MAIL_DISABLED: 'true' }

  it('without a signing key outside development mode, naming the variable', () => {
    expect(() => loadSigningKeys(loadConfig(base))).toThrow(/JWT_PRIVATE_KEY is required/)
    expect(() => loadSigningKeys(loadConfig({ ...base, JWT_ALGORITHM: 'HS256' }))).toThrow(/JWT_SECRET is required/)
  })

  it('with a weak HS256 secret, even in development mode', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'keys-'))
    expect(() => loadSigningKeys(loadConfig({ ...base, JWT_ALGORITHM: 'HS256', JWT_SECRET: 'secret' }), dir)).toThrow(
      /JWT_SECRET is too weak: at least 32 bytes/
    )
  })

  it('with a key of the wrong type for the algorithm', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
    expect(() => loadSigningKeys(loadConfig({ ...base, JWT_PRIVATE_KEY: pem(rsa.privateKey, 'pkcs8') }))).toThrow(/Ed25519/)
  })

  it('with an unreadable key file', () => {
    expect(() => loadSigningKeys(loadConfig({ ...base, JWT_PRIVATE_KEY: '/nonexistent/key.pem' }))).toThrow(/JWT_PRIVATE_KEY/)
  })

  it('with an invalid setting, naming it', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT/)
    expect(() => loadConfig({ JWT_ALGORITHM: 'none' })).toThrow(/JWT_ALGORITHM/)
  })
})

describe('development mode', () => {
  it('generates a key once, keeps it private, and reuses it', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'keys-'))
    const config = loadConfig({})
    const first = loadSigningKeys(config, dir)
    const second = loadSigningKeys(config, dir)
    expect(second.kid).toBe(first.kid)
    const file = path.join(dir, 'signing-key-eddsa.pem')
    expect(statSync(file).mode & 0o777).toBe(0o600)
  })
})
