// The pieces of multi-factor sign-in on their own: the test's own HOTP/TOTP
// against the RFCs' vectors, the service's TOTP check against that, recovery
// codes, and the encryption of secrets at rest (keys, rotation, binding to
// the account).
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { loadMfaKeys } from '../src/lib/mfa-keys.js'
import { hashRecoveryCode, newRecoveryCodes, normalizeRecoveryCode } from '../src/lib/recovery-codes.js'
import { newTotpSecret, totpStep, totpUri } from '../src/lib/totp.js'
import { base32Decode, codeAt, hotp, timeStep, totp } from './otp.js'

describe('the test’s own one-time passwords', () => {
  it('match RFC 4226 Appendix D (HOTP)', () => {
    const key = Buffer.from('12345678901234567890')
    const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489']
    expect(expected.map((_, counter) => hotp(key, counter))).toEqual(expected)
  })

  it('match RFC 6238 Appendix B (TOTP, SHA-1, SHA-256 and SHA-512, 8 digits)', () => {
    const keys = {
      sha1: Buffer.from('12345678901234567890'),
      sha256: Buffer.from('12345678901234567890123456789012'),
      sha512: Buffer.from('1234567890123456789012345678901234567890123456789012345678901234')
    }
    const vectors: Array<[number, string, string, string]> = [
      [59, '94287082', '46119246', '90693936'],
      [1111111109, '07081804', '68084774', '25091201'],
      [1111111111, '14050471', '67062674', '99943326'],
      [1234567890, '89005924', '91819424', '93441116'],
      [2000000000, '69279037', '90698825', '38618901'],
      [20000000000, '65353130', '77737706', '47863826']
    ]
    for (const [seconds, sha1, sha256, sha512] of vectors) {
      expect(totp(keys.sha1, seconds * 1000, 8, 'sha1')).toBe(sha1)
      expect(totp(keys.sha256, seconds * 1000, 8, 'sha256')).toBe(sha256)
      expect(totp(keys.sha512, seconds * 1000, 8, 'sha512')).toBe(sha512)
    }
  })

  it('decode base32 as RFC 4648 §10 does', () => {
    expect(base32Decode('MZXW6YTBOI======').toString()).toBe('foobar')
    expect(base32Decode('mzxw6ytboi').toString()).toBe('foobar')
  })
})

describe('the service’s TOTP check', () => {
  const secret = newTotpSecret()
  const now = 1_795_000_015_000 // 15 s into a step

  it('makes 160-bit base32 secrets and authenticator-app URIs', () => {
    expect(secret).toMatch(/^[A-Z2-7]{32}$/)
    expect(base32Decode(secret)).toHaveLength(20)
    const uri = new URL(totpUri({ issuer: 'Blog API', account: 'ada@example.com', secret }))
    expect(uri.protocol).toBe('otpauth:')
    expect(uri.host).toBe('totp')
    expect(decodeURIComponent(uri.pathname)).toBe('/Blog API:ada@example.com')
    expect(uri.searchParams.get('secret')).toBe(secret)
    expect(uri.searchParams.get('issuer')).toBe('Blog API')
  })

  it('accepts the code of the current step and of one step either side, and says which step it was', () => {
    for (const steps of [-1, 0, 1]) expect(totpStep(secret, codeAt(secret, now, steps), now)).toBe(timeStep(now) + steps)
  })

  it('refuses codes two steps away, other secrets’ codes and anything not six digits', () => {
    const window = new Set([-1, 0, 1].map((near) => codeAt(secret, now, near)))
    const elsewhere = [-3, -2, 2, 3].map((steps) => codeAt(secret, now, steps))
    const otherSecrets = Array.from({ length: 5 }, () => codeAt(newTotpSecret(), now))
    // Any of these may equal a code of the window by chance (3 in a million): then it is that code.
    for (const code of [...elsewhere, ...otherSecrets].filter((code) => !window.has(code))) {
      expect(totpStep(secret, code, now)).toBeUndefined()
    }
    for (const code of ['', '12345', '1234567', '12345a', ' 123456', '１２３４５６', '-12345']) expect(totpStep(secret, code, now)).toBeUndefined()
  })
})

describe('recovery codes', () => {
  it('are ten, distinct, 80 random bits each, in groups of four', () => {
    const codes = newRecoveryCodes()
    expect(codes).toHaveLength(10)
    expect(new Set(codes).size).toBe(10)
    for (const code of codes) expect(code).toMatch(/^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$/)
  })

  it('read the same whatever the case, spaces and dashes, and with o, i, l for 0, 1, 1', () => {
    const [code = ''] = newRecoveryCodes(1)
    const plain = code.replace(/-/g, '')
    expect(normalizeRecoveryCode(code.toUpperCase())).toBe(plain)
    expect(normalizeRecoveryCode(` ${plain.slice(0, 8)} ${plain.slice(8)} `)).toBe(plain)
    expect(normalizeRecoveryCode('0000-1111-0000-1111')).toBe(normalizeRecoveryCode('oooo-iiii-OOOO-LLLL'))
    for (const typed of ['', 'short', '0000-1111-0000-111', '0000-1111-0000-11111', 'uuuu-uuuu-uuuu-uuuu', '123456']) {
      expect(normalizeRecoveryCode(typed)).toBeUndefined()
    }
  })

  it('are stored as hashes salted with the account, so one code hashes differently for two accounts', () => {
    expect(hashRecoveryCode('a', '0123456789abcdef')).toMatch(/^[0-9a-f]{64}$/)
    expect(hashRecoveryCode('a', '0123456789abcdef')).not.toBe(hashRecoveryCode('b', '0123456789abcdef'))
  })
})

describe('secrets at rest', () => {
  const key = () => randomBytes(32).toString('base64')
  const dirs: string[] = []
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })

  it('are sealed with AES-256-GCM: the ciphertext names its key, not the secret, and differs every time', () => {
    const box = loadMfaKeys({ MFA_ENCRYPTION_KEY: key() })
    const secret = newTotpSecret()
    const sealed = box.seal(secret, 'user-1')
    expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]{11}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/)
    expect(sealed).not.toContain(secret)
    expect(box.seal(secret, 'user-1')).not.toBe(sealed)
    expect(box.open(sealed, 'user-1')).toBe(secret)
  })

  it('open only for the account they were sealed for, and not once altered', () => {
    const box = loadMfaKeys({ MFA_ENCRYPTION_KEY: key() })
    const sealed = box.seal(newTotpSecret(), 'user-1')
    expect(() => box.open(sealed, 'user-2')).toThrow(/not this account/)
    const parts = sealed.split('.')
    const body = Buffer.from(parts[3] ?? '', 'base64url')
    body[0] = (body[0] ?? 0) ^ 1
    expect(() => box.open([parts[0], parts[1], parts[2], body.toString('base64url')].join('.'), 'user-1')).toThrow()
    expect(() => box.open('v1.garbage', 'user-1')).toThrow()
    expect(() => box.open('plain text', 'user-1')).toThrow()
  })

  it('rotate: a new key seals, the previous ones still open, a box without the old key cannot', () => {
    const [oldKey, newKey] = [key(), key()]
    const before = loadMfaKeys({ MFA_ENCRYPTION_KEY: oldKey })
    const sealed = before.seal('JBSWY3DPEHPK3PXP', 'user-1')
    const after = loadMfaKeys({ MFA_ENCRYPTION_KEY: newKey, MFA_PREVIOUS_ENCRYPTION_KEYS: `${key()}, ${oldKey}` })
    expect(after.open(sealed, 'user-1')).toBe('JBSWY3DPEHPK3PXP')
    expect(after.isCurrent(sealed)).toBe(false)
    expect(after.isCurrent(after.seal('x', 'user-1'))).toBe(true)
    expect(() => loadMfaKeys({ MFA_ENCRYPTION_KEY: newKey }).open(sealed, 'user-1')).toThrow(/not configured/)
  })

  it('take a key of 32 bytes in base64, base64url or hex, and nothing else', () => {
    const bytes = randomBytes(32)
    for (const spelled of [bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex')]) {
      expect(() => loadMfaKeys({ MFA_ENCRYPTION_KEY: spelled })).not.toThrow()
    }
    for (const bad of ['short', randomBytes(16).toString('base64'), randomBytes(48).toString('base64'), 'x'.repeat(64)]) {
      expect(() => loadMfaKeys({ MFA_ENCRYPTION_KEY: bad })).toThrow(/^MFA_ENCRYPTION_KEY must be 32 random bytes/)
    }
    expect(() => loadMfaKeys({ MFA_ENCRYPTION_KEY: key(), MFA_PREVIOUS_ENCRYPTION_KEYS: 'short' })).toThrow(/^MFA_PREVIOUS_ENCRYPTION_KEYS/)
  })

  it('need a key outside development; in development one is made once and kept, readable by its owner only', () => {
    expect(() => loadMfaKeys({})).toThrow(/^MFA_ENCRYPTION_KEY is required/)
    const dir = mkdtempSync(path.join(tmpdir(), 'mfa-keys-'))
    dirs.push(dir)
    const first = loadMfaKeys({}, dir)
    const sealed = first.seal('JBSWY3DPEHPK3PXP', 'user-1')
    const file = path.join(dir, 'mfa-encryption-key')
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(Buffer.from(readFileSync(file, 'utf8').trim(), 'base64')).toHaveLength(32)
    expect(loadMfaKeys({}, dir).open(sealed, 'user-1')).toBe('JBSWY3DPEHPK3PXP')
  })
})
