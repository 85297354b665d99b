// Every way a forged, tampered, stale or misused token can be presented to a
// protected route is refused with 401 and an RFC 6750 challenge.
import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { bearer, decodeJwt, TEST_PRIVATE_KEY, useApp, userWithToken } from './helper.js'

const ctx = useApp()
const testKey = createPrivateKey(TEST_PRIVATE_KEY)

type Json = Record<string, unknown>
const encode = (value: Json) => Buffer.from(JSON.stringify(value)).toString('base64url')

/** A JWT with any header and claims, signed by `signer` over the usual input. */
function craft(header: Json, claims: Json, signer: (input: string) => Buffer | string) {
  const input = `${encode(header)}.${encode(claims)}`
  const signature = signer(input)
  return `${input}.${typeof signature === 'string' ? signature : signature.toString('base64url')}`
}
const ed25519 = (key: KeyObject) => (input: string) => sign(null, Buffer.from(input), key)

let real: { token: string; header: Json; claims: Json; refreshToken: string }

beforeAll(async () => {
  const user = await userWithToken(ctx.app)
  const { header, claims } = decodeJwt(user.tokens.access_token)
  real = { token: user.tokens.access_token, header, claims, refreshToken: user.tokens.refresh_token ?? '' }
})

async function me(token: string) {
  return ctx.app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) })
}

function expectRefused(response: Awaited<ReturnType<typeof me>>, description?: string) {
  expect(response.statusCode).toBe(401)
  expect(response.headers['content-type']).toContain('application/problem+json')
  const challenge = response.headers['www-authenticate'] as string
  expect(challenge).toMatch(/^Bearer realm="blog-api", error="invalid_token", error_description="[^"]+"$/)
  if (description) expect(challenge).toContain(description)
}

const now = () => Math.floor(Date.now() / 1000)

describe('a token re-signed with the real key', () => {
  it('is accepted when nothing changed (the crafting itself is sound)', async () => {
    const response = await me(craft(real.header, real.claims, ed25519(testKey)))
    expect(response.statusCode).toBe(200)
  })
})

describe('forged and tampered tokens are refused', () => {
  it('alg none', async () => {
    expectRefused(await me(craft({ ...real.header, alg: 'none' }, real.claims, () => '')))
  })

  it('HS256 signed with the public key as the HMAC secret', async () => {
    const publicPem = createPublicKey(testKey).export({ format: 'pem', type: 'spki' }).toString()
    const token = craft({ ...real.header, alg: 'HS256' }, real.claims, (input) =>
      createHmac('sha256', publicPem).update(input).digest()
    )
    expectRefused(await me(token))
  })

  it('a flipped signature byte', async () => {
    const [head, body, signature = ''] = real.token.split('.')
    const bytes = Buffer.from(signature, 'base64url')
    bytes[0] = (bytes[0] ?? 0) ^ 0x01
    expectRefused(await me(`${head}.${body}.${bytes.toString('base64url')}`))
  })

  it('changed claims under the original signature', async () => {
    const [head, , signature] = real.token.split('.')
    const escalated = encode({ ...real.claims, scope: 'posts:write users:read users:write clients:manage' })
    expectRefused(await me(`${head}.${escalated}.${signature}`))
  })

  it('a key of its own, presented with the real kid', async () => {
    const other = generateKeyPairSync('ed25519').privateKey
    expectRefused(await me(craft(real.header, real.claims, ed25519(other))))
  })

  it('an unknown kid', async () => {
    expectRefused(await me(craft({ ...real.header, kid: 'someone-elses-key' }, real.claims, ed25519(testKey))))
  })

  it('no kid at all', async () => {
    const { kid: _kid, ...header } = real.header
    expectRefused(await me(craft(header, real.claims, ed25519(testKey))))
  })

  it('a key carried inside the token (jwk header) is never trusted', async () => {
    const attacker = generateKeyPairSync('ed25519')
    const jwk = attacker.publicKey.export({ format: 'jwk' })
    const token = craft({ ...real.header, kid: 'attacker', jwk }, real.claims, ed25519(attacker.privateKey))
    expectRefused(await me(token))
  })
})

describe('validly signed tokens with bad claims are refused', () => {
  const resign = (header: Json, claims: Json) => me(craft(header, claims, ed25519(testKey)))

  it('expired', async () => {
    expectRefused(await resign(real.header, { ...real.claims, iat: now() - 1000, exp: now() - 60 }), 'expired')
  })

  it('not yet valid', async () => {
    expectRefused(await resign(real.header, { ...real.claims, nbf: now() + 120 }))
  })

  it('a wrong issuer', async () => {
    expectRefused(await resign(real.header, { ...real.claims, iss: 'https://evil.example' }))
  })

  it('a wrong audience', async () => {
    expectRefused(await resign(real.header, { ...real.claims, aud: 'another-api' }))
  })

  it('a wrong typ (an ID token or a plain JWT)', async () => {
    expectRefused(await resign({ ...real.header, typ: 'JWT' }, real.claims))
    const { typ: _typ, ...untyped } = real.header
    expectRefused(await resign(untyped, real.claims))
  })

  it('a missing required claim', async () => {
    const { sid: _sid, ...claims } = real.claims
    expectRefused(await resign(real.header, claims))
  })
})

describe('the wrong kind of token, or a malformed header', () => {
  it('a refresh token presented as an access token', async () => {
    expectRefused(await me(real.refreshToken))
  })

  it('a token longer than the limit is refused before parsing', async () => {
    expectRefused(await me(`${real.token}${'A'.repeat(5000)}`), 'too long')
  })

  it('garbage', async () => {
    expectRefused(await me('not.a.jwt'))
  })

  it('a malformed Authorization header', async () => {
    for (const authorization of ['Bearer', 'Bearer ', 'Bearer a b', 'Bearer "quoted"']) {
      const response = await ctx.app.inject({ method: 'GET', url: '/users/me', headers: { authorization } })
      expectRefused(response)
    }
  })

  it('no token at all gets a challenge without an error code (RFC 6750 §3.1)', async () => {
    for (const headers of [{}, { authorization: 'Basic dXNlcjpwYXNz' }]) {
      const response = await ctx.app.inject({ method: 'GET', url: '/users/me', headers })
      expect(response.statusCode).toBe(401)
      expect(response.headers['www-authenticate']).toBe('Bearer realm="blog-api"')
      expect(response.json()).toMatchObject({ status: 401, title: 'Unauthorized' })
    }
  })
})

describe('scopes', () => {
  it('a valid token without the needed scope is 403 insufficient_scope, naming the scope', async () => {
    const user = await userWithToken(ctx.app)
    const response = await ctx.app.inject({ method: 'GET', url: '/users', headers: user.headers })
    expect(response.statusCode).toBe(403)
    expect(response.headers['www-authenticate']).toBe(
      'Bearer realm="blog-api", error="insufficient_scope", error_description="This request needs the users:read scope.", scope="users:read"'
    )
  })
})
