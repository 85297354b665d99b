// Multi-factor sign-in as its users meet it: enrolling an authenticator app,
// signing in with a code or a recovery code, replacing the codes, turning MFA
// off (alone, or by an admin), and what the tokens, the database and the
// audit trail say. Codes come from the test's own TOTP (test/otp.ts), at
// times the test chooses (test/mfa-helper.ts).
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { AMR_PASSWORD_AND_OTP } from '../src/repositories/sessions.js'
import {
  adminWithToken,
  basicAuth,
  bearer,
  buildApp,
  clientAddress,
  decodeJwt,
  login,
  PASSWORD,
  serviceClient,
  tokenRequest,
  TEST_APP_SECRET,
  TEST_MFA_KEY,
  TEST_PRIVATE_KEY,
  useApp,
  userWithToken
} from './helper.js'
import { codeStep, confirm, MFA_GRANT, mfaUser, passwordStep, post, signIn, startEnrolment, stepClock } from './mfa-helper.js'
import { codeAt } from './otp.js'

const ctx = useApp()

const me = (headers: Record<string, string>) => ctx.app.inject({ method: 'GET', url: '/users/me', headers })
const disable = (headers: Record<string, string>, code: string, password = PASSWORD) =>
  ctx.app.inject({ method: 'DELETE', url: '/users/me/mfa/totp', headers, payload: { current_password: password, code }, remoteAddress: clientAddress() })
const regenerate = (headers: Record<string, string>, code: string, password = PASSWORD) =>
  post(ctx.app, '/users/me/mfa/recovery-codes', headers, { current_password: password, code })
/** The user's audit events of a kind, after writing out the batch still queued. */
const events = async (userId: string, kind: string) => {
  await ctx.app.auditLog.flush()
  return ctx.app.prisma.auditEvent.findMany({ where: { userId, kind }, orderBy: { createdAt: 'asc' } })
}
const liveSessions = (userId: string) => ctx.app.prisma.session.count({ where: { userId, endedAt: null } })

/** Runs `npm run mfa:reencrypt` as an operator would, on this file's database. */
function reencrypt(keys: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/mfa-reencrypt.ts'], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: {
        ...process.env,
        DATABASE_URL: ctx.app.config.DATABASE_URL,
        JWT_PRIVATE_KEY: TEST_PRIVATE_KEY,
        APP_SECRET: TEST_APP_SECRET,
        MAIL_URL: ctx.app.config.MAIL_URL,
        MAIL_FROM: ctx.app.config.MAIL_FROM,
        LOG_LEVEL: 'silent',
        ...keys
      },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

describe('enrolling an authenticator app', () => {
  it('needs the current password, answers a secret and its otpauth URI, and changes nothing until confirmed', async () => {
    const clock = stepClock(ctx.app)
    const user = await userWithToken(ctx.app)
    const wrong = await startEnrolment(ctx.app, user.headers, 'not the password at all')
    expect(wrong.statusCode).toBe(400)
    expect(wrong.json().errors).toEqual([{ field: 'current_password', message: 'is incorrect' }])

    const started = await startEnrolment(ctx.app, user.headers)
    expect(started.statusCode).toBe(201)
    expect(started.headers['cache-control']).toBe('no-store')
    const { secret, otpauth_uri: uri } = started.json<{ secret: string; otpauth_uri: string }>()
    expect(secret).toMatch(/^[A-Z2-7]{32}$/)
    const parsed = new URL(uri)
    expect([parsed.protocol, parsed.host, decodeURIComponent(parsed.pathname)]).toEqual(['otpauth:', 'totp', `/Blog API:${user.email}`])
    expect(Object.fromEntries(parsed.searchParams)).toMatchObject({ secret, issuer: 'Blog API' })

    // Pending: not on, and the password alone still signs in.
    expect((await me(user.headers)).json().mfa_enabled).toBe(false)
    await login(ctx.app, user.email)
    // The secret is stored encrypted only.
    const stored = await ctx.app.prisma.totpFactor.findUniqueOrThrow({ where: { userId: user.id } })
    expect(stored.confirmedAt).toBeNull()
    expect(stored.secret).toMatch(/^v1\./)
    expect(stored.secret).not.toContain(secret)
    expect(codeAt(secret, clock.now)).toMatch(/^\d{6}$/)
  })

  it('a code confirms it: MFA is on, ten recovery codes are shown once, every other session ends and this one goes on', async () => {
    const clock = stepClock(ctx.app)
    const user = await userWithToken(ctx.app)
    const other = await login(ctx.app, user.email)
    const { secret } = (await startEnrolment(ctx.app, user.headers)).json<{ secret: string }>()

    const confirmed = await confirm(ctx.app, user.headers, codeAt(secret, clock.now))
    expect(confirmed.statusCode).toBe(200)
    expect(confirmed.headers['cache-control']).toBe('no-store')
    const codes = confirmed.json<{ recovery_codes: string[] }>().recovery_codes
    expect(codes).toHaveLength(10)
    expect(new Set(codes).size).toBe(10)

    const mine = await me(user.headers)
    expect(mine.statusCode).toBe(200)
    expect(mine.json().mfa_enabled).toBe(true)
    expect((await me(bearer(other.access_token))).statusCode).toBe(401)
    const refreshed = await tokenRequest(ctx.app, { grant_type: 'refresh_token', refresh_token: other.refresh_token ?? '' })
    expect(refreshed.json().error).toBe('invalid_grant')
    expect(await liveSessions(user.id)).toBe(1)
    // Stored as hashes only.
    const stored = await ctx.app.prisma.mfaRecoveryCode.findMany({ where: { userId: user.id } })
    expect(stored).toHaveLength(10)
    for (const row of stored) expect(codes.some((code) => row.codeHash.includes(code.replace(/-/g, '')))).toBe(false)
  })

  it('a wrong code, a recovery-code-shaped one, or none pending does not turn MFA on', async () => {
    const clock = stepClock(ctx.app)
    const user = await userWithToken(ctx.app)
    const noneYet = await confirm(ctx.app, user.headers, '123456')
    expect(noneYet.statusCode).toBe(409)

    const { secret } = (await startEnrolment(ctx.app, user.headers)).json<{ secret: string }>()
    const right = codeAt(secret, clock.now)
    const wrong = right === '000000' ? '000001' : '000000'
    for (const code of [wrong, codeAt(secret, clock.now, 3), 'abcd-efgh-jkmn-pqrs']) {
      const answer = await confirm(ctx.app, user.headers, code)
      expect(answer.statusCode).toBe(400)
      expect(answer.json().errors).toEqual([{ field: 'code', message: 'is incorrect' }])
    }
    expect((await me(user.headers)).json().mfa_enabled).toBe(false)
    expect(await events(user.id, 'mfa.failure')).toHaveLength(3)
  })

  it('asking again replaces the pending secret: a code of the first no longer confirms', async () => {
    const clock = stepClock(ctx.app)
    const user = await userWithToken(ctx.app)
    const first = (await startEnrolment(ctx.app, user.headers)).json<{ secret: string }>().secret
    const second = (await startEnrolment(ctx.app, user.headers)).json<{ secret: string }>().secret
    expect(second).not.toBe(first)
    if (codeAt(first, clock.now) !== codeAt(second, clock.now)) {
      expect((await confirm(ctx.app, user.headers, codeAt(first, clock.now))).statusCode).toBe(400)
    }
    expect((await confirm(ctx.app, user.headers, codeAt(second, clock.now))).statusCode).toBe(200)
  })

  it('while MFA is on, enrolling or confirming again is refused', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    expect((await startEnrolment(ctx.app, user.headers)).statusCode).toBe(409)
    clock.step()
    expect((await confirm(ctx.app, user.headers, codeAt(user.secret, clock.now))).statusCode).toBe(409)
  })
})

describe('signing in with MFA', () => {
  it('a right password answers 403 mfa_required with an mfa_token, and no tokens or session', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const sessions = await ctx.app.prisma.session.count({ where: { userId: user.id } })
    const { response, mfaToken } = await passwordStep(ctx.app, user.email)
    expect(response.statusCode).toBe(403)
    expect(response.headers['cache-control']).toBe('no-store')
    expect(response.json()).toEqual({ error: 'mfa_required', error_description: expect.any(String), mfa_token: mfaToken })
    expect(mfaToken).toMatch(/^bapi_mfa_[A-Za-z0-9_-]{43}$/)
    expect(await ctx.app.prisma.session.count({ where: { userId: user.id } })).toBe(sessions)
    // A wrong password says nothing about MFA.
    const wrong = await tokenRequest(ctx.app, { grant_type: 'password', username: user.email, password: 'not the password at all' })
    expect(wrong.json()).toEqual({ error: 'invalid_grant', error_description: 'The email or password is incorrect.' })
  })

  it('the mfa_token and a current code give tokens whose amr says pwd and otp, also after a refresh', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const tokens = await signIn(ctx.app, clock, user)
    expect(tokens.scope).toBe('posts:write')
    expect(decodeJwt(tokens.access_token).claims).toMatchObject({ sub: user.id, client_id: 'public', amr: ['pwd', 'otp'] })
    expect((await me(tokens.headers)).statusCode).toBe(200)
    const refreshed = await tokenRequest(ctx.app, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token })
    expect(refreshed.statusCode).toBe(200)
    expect(decodeJwt(refreshed.json().access_token).claims.amr).toEqual(AMR_PASSWORD_AND_OTP)
    // The password-only session of the same user says pwd alone.
    expect(decodeJwt(user.tokens.access_token).claims.amr).toEqual(['pwd'])
  })

  it('a code of one step either side is accepted; two steps away is not', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    clock.step(5)
    for (const steps of [-1, 0, 1]) {
      const { mfaToken } = await passwordStep(ctx.app, user.email)
      const answer = await codeStep(ctx.app, mfaToken, codeAt(user.secret, clock.now, steps))
      expect(answer.statusCode, `${steps} steps`).toBe(200)
      // Each code works once and never an earlier one: the next try needs a later step.
      clock.step(steps + 1)
    }
    const { mfaToken } = await passwordStep(ctx.app, user.email)
    for (const steps of [-2, 2]) {
      const code = codeAt(user.secret, clock.now, steps)
      if ([-1, 0, 1].some((near) => codeAt(user.secret, clock.now, near) === code)) continue
      expect((await codeStep(ctx.app, mfaToken, code)).json().error).toBe('invalid_grant')
    }
  })

  it('each code works once: the same code again, or an earlier step’s, is refused', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    clock.step()
    const code = codeAt(user.secret, clock.now)
    const first = await passwordStep(ctx.app, user.email)
    expect((await codeStep(ctx.app, first.mfaToken, code)).statusCode).toBe(200)

    const second = await passwordStep(ctx.app, user.email)
    const replay = await codeStep(ctx.app, second.mfaToken, code)
    expect(replay.statusCode).toBe(400)
    expect(replay.json()).toEqual({ error: 'invalid_grant', error_description: 'The code is incorrect.' })
    const earlier = codeAt(user.secret, clock.now, -1)
    if (earlier !== code) expect((await codeStep(ctx.app, second.mfaToken, earlier)).statusCode).toBe(400)
    // The next step's code still works with the same mfa_token.
    expect((await codeStep(ctx.app, second.mfaToken, codeAt(user.secret, clock.now, 1))).statusCode).toBe(200)
  })

  it('a recovery code signs in once, however it is typed, and counts as otp', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const [code = '', another = ''] = user.recoveryCodes
    const first = await passwordStep(ctx.app, user.email)
    const answer = await codeStep(ctx.app, first.mfaToken, ` ${code.toUpperCase().replace(/-/g, ' ')} `)
    expect(answer.statusCode).toBe(200)
    expect(decodeJwt(answer.json().access_token).claims.amr).toEqual(['pwd', 'otp'])

    const second = await passwordStep(ctx.app, user.email)
    expect((await codeStep(ctx.app, second.mfaToken, code)).json().error).toBe('invalid_grant')
    expect((await codeStep(ctx.app, second.mfaToken, another)).statusCode).toBe(200)
    expect(await ctx.app.mfaRepository.unusedRecoveryCodes(user.id)).toBe(8)
    expect((await events(user.id, 'mfa.recovery_code_used')).map((event) => event.details)).toEqual([
      { purpose: 'sign_in', remaining: 9 },
      { purpose: 'sign_in', remaining: 8 }
    ])
  })

  it('the mfa_token works once, for its client only, and for five minutes', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const { mfaToken } = await passwordStep(ctx.app, user.email)
    clock.step()
    expect((await codeStep(ctx.app, mfaToken, codeAt(user.secret, clock.now))).statusCode).toBe(200)
    clock.step()
    const again = await codeStep(ctx.app, mfaToken, codeAt(user.secret, clock.now))
    expect(again.json()).toEqual({ error: 'invalid_grant', error_description: expect.stringMatching(/^The mfa_token is invalid, expired or used up\./) })

    // Started by a registered client, finished by the public one (or the other way round): refused.
    const client = await serviceClient(ctx.app, ['posts:write'], { grantTypes: ['password'], firstParty: true })
    const confidential = { authorization: basicAuth(client.clientId, client.clientSecret) }
    const theirs = await passwordStep(ctx.app, user.email, {}, confidential)
    expect(theirs.response.statusCode).toBe(403)
    clock.step()
    expect((await codeStep(ctx.app, theirs.mfaToken, codeAt(user.secret, clock.now))).json().error).toBe('invalid_grant')
    const fromClient = await codeStep(ctx.app, theirs.mfaToken, codeAt(user.secret, clock.now), confidential)
    expect(fromClient.statusCode).toBe(200)
    expect(decodeJwt(fromClient.json().access_token).claims.client_id).toBe(client.clientId)

    const late = await passwordStep(ctx.app, user.email)
    clock.advance(5 * 60)
    clock.step()
    expect((await codeStep(ctx.app, late.mfaToken, codeAt(user.secret, clock.now))).json().error).toBe('invalid_grant')
  })

  it('keeps the scope asked at the password step', async () => {
    const clock = stepClock(ctx.app)
    const admin = await adminWithToken(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    await ctx.app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: admin.headers, payload: { role: 'admin' } })
    const { mfaToken } = await passwordStep(ctx.app, user.email, { scope: 'users:read posts:write' })
    clock.step()
    const answer = await codeStep(ctx.app, mfaToken, codeAt(user.secret, clock.now))
    expect(answer.json().scope).toBe('posts:write users:read')
  })

  it('five wrong codes end the mfa_token', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const { mfaToken } = await passwordStep(ctx.app, user.email)
    clock.step()
    const right = codeAt(user.secret, clock.now)
    const wrong = right === '000000' ? '000001' : '000000'
    // Each from an address of its own: the token's limit, not the account's lockout, is under test.
    for (let attempt = 1; attempt <= 5; attempt++) {
      const answer = await codeStep(ctx.app, mfaToken, wrong)
      expect(answer.statusCode).toBe(400)
      expect(answer.json().error_description).toMatch(attempt === 5 ? /last try of this mfa_token/ : /^The code is incorrect\.$/)
    }
    expect((await codeStep(ctx.app, mfaToken, right)).json().error_description).toMatch(/^The mfa_token is invalid, expired or used up\./)
    const failures = await events(user.id, 'mfa.failure')
    expect(failures.map((event) => event.details)).toEqual([1, 2, 3, 4, 5].map((attempts) => ({ purpose: 'sign_in', reason: 'wrong_code', attempts })))
  })

  it('wrong codes count towards the account’s lockout like wrong passwords, and a right password does not reset them', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const address = clientAddress()
    clock.step()
    const right = codeAt(user.secret, clock.now)
    const wrong = right === '000000' ? '000001' : '000000'
    // The password step counts one attempt, each wrong code one more; the fifth starts a lockout.
    const first = await passwordStep(ctx.app, user.email, {}, {}, address)
    for (let i = 0; i < 2; i++) expect((await codeStep(ctx.app, first.mfaToken, wrong, {}, address)).statusCode).toBe(400)
    const second = await passwordStep(ctx.app, user.email, {}, {}, address)
    expect(second.response.statusCode).toBe(403)
    expect((await codeStep(ctx.app, second.mfaToken, wrong, {}, address)).statusCode).toBe(400)
    const locked = await codeStep(ctx.app, second.mfaToken, right, {}, address)
    expect(locked.statusCode).toBe(429)
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0)
    expect((await passwordStep(ctx.app, user.email, {}, {}, address)).response.statusCode).toBe(429)
    expect(await events(user.id, 'login.locked')).toHaveLength(1)
    // Another address is not locked out, and its right code signs in.
    const elsewhere = await passwordStep(ctx.app, user.email)
    expect((await codeStep(ctx.app, elsewhere.mfaToken, right)).statusCode).toBe(200)
  })

  it('hostile codes and tokens get 4xx, never tokens', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const { mfaToken } = await passwordStep(ctx.app, user.email)
    clock.step()
    const right = codeAt(user.secret, clock.now)
    const forged = `bapi_mfa_${'A'.repeat(43)}`
    const cases: Array<Record<string, string>> = [
      { mfa_token: mfaToken },
      { otp: right },
      { mfa_token: '', otp: right },
      { mfa_token: mfaToken, otp: '' },
      { mfa_token: forged, otp: right },
      { mfa_token: mfaToken.slice(0, -1), otp: right },
      { mfa_token: `${mfaToken}x`, otp: right },
      { mfa_token: mfaToken.replace('bapi_mfa_', 'bapi_rt_'), otp: right },
      { mfa_token: 'x'.repeat(5000), otp: right },
      { mfa_token: `${mfaToken}\u0000`, otp: right },
      { mfa_token: mfaToken, otp: `${right}\u0000` },
      { mfa_token: mfaToken, otp: '9'.repeat(5000) },
      { mfa_token: mfaToken, otp: '\uD800\uD800\uD800\uD800\uD800\uD800' },
      { mfa_token: mfaToken, otp: "' OR 1=1 --" },
      { mfa_token: mfaToken, otp: right.split('').reverse().join('') === right ? '000000' : right.split('').reverse().join('') }
    ]
    for (const form of cases) {
      const answer = await tokenRequest(ctx.app, { grant_type: MFA_GRANT, ...form })
      expect(answer.statusCode, JSON.stringify(form).slice(0, 120)).toBeGreaterThanOrEqual(400)
      expect(answer.statusCode).toBeLessThan(500)
      expect(answer.json().access_token).toBeUndefined()
    }
    // JSON with the wrong types is refused as well.
    const typed = await ctx.app.inject({
      method: 'POST',
      url: '/auth/token',
      remoteAddress: clientAddress(),
      payload: { grant_type: MFA_GRANT, mfa_token: [mfaToken], otp: 123456 }
    })
    expect(typed.statusCode).toBe(400)
    expect(typed.json().error).toBe('invalid_request')
    // After all that (at most four counted as wrong codes), the token still finishes the sign-in.
    expect((await codeStep(ctx.app, mfaToken, right)).statusCode).toBe(200)
  })

  it('an account without MFA signs in with the password alone, amr pwd', async () => {
    const user = await userWithToken(ctx.app)
    expect(decodeJwt(user.tokens.access_token).claims.amr).toEqual(['pwd'])
    const session = await ctx.app.prisma.session.findFirstOrThrow({ where: { userId: user.id } })
    expect(session.amr).toEqual(['pwd'])
  })
})

describe('recovery codes and turning MFA off', () => {
  it('new recovery codes need the password and a code; the old set stops working and other sessions end', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const other = await signIn(ctx.app, clock, user)
    clock.step()
    expect((await regenerate(user.headers, codeAt(user.secret, clock.now), 'not the password at all')).statusCode).toBe(400)
    const answer = await regenerate(user.headers, codeAt(user.secret, clock.now))
    expect(answer.statusCode).toBe(200)
    expect(answer.headers['cache-control']).toBe('no-store')
    const fresh = answer.json<{ recovery_codes: string[] }>().recovery_codes
    expect(fresh).toHaveLength(10)
    expect(fresh.some((code) => user.recoveryCodes.includes(code))).toBe(false)
    expect((await me(other.headers)).statusCode).toBe(401)
    expect((await me(user.headers)).statusCode).toBe(200)

    const { mfaToken } = await passwordStep(ctx.app, user.email)
    expect((await codeStep(ctx.app, mfaToken, user.recoveryCodes[0] ?? '')).statusCode).toBe(400)
    expect((await codeStep(ctx.app, mfaToken, fresh[0] ?? '')).statusCode).toBe(200)
    expect((await events(user.id, 'mfa.recovery_codes_regenerated')).map((event) => event.details)).toEqual([{ method: 'totp' }])
  })

  it('turning MFA off needs the password and a code, ends the other sessions and pending sign-ins, and the password alone signs in again', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const other = await signIn(ctx.app, clock, user)
    const pending = await passwordStep(ctx.app, user.email)
    clock.step()
    const code = codeAt(user.secret, clock.now)
    expect((await disable(user.headers, code, 'not the password at all')).statusCode).toBe(400)
    const wrongCode = code === '000000' ? '000001' : '000000'
    expect((await disable(user.headers, wrongCode)).statusCode).toBe(400)
    expect((await me(user.headers)).json().mfa_enabled).toBe(true)

    const off = await disable(user.headers, code)
    expect(off.statusCode).toBe(204)
    expect((await me(user.headers)).json().mfa_enabled).toBe(false)
    expect((await me(other.headers)).statusCode).toBe(401)
    clock.step()
    expect((await codeStep(ctx.app, pending.mfaToken, codeAt(user.secret, clock.now))).json().error).toBe('invalid_grant')
    expect(await ctx.app.prisma.totpFactor.count({ where: { userId: user.id } })).toBe(0)
    expect(await ctx.app.prisma.mfaRecoveryCode.count({ where: { userId: user.id } })).toBe(0)
    const tokens = await login(ctx.app, user.email)
    expect(decodeJwt(tokens.access_token).claims.amr).toEqual(['pwd'])
    expect((await disable(user.headers, code)).statusCode).toBe(409)
  })

  it('a lost authenticator: a recovery code signs in and turns MFA off', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const [first = '', second = ''] = user.recoveryCodes
    const { mfaToken } = await passwordStep(ctx.app, user.email)
    const tokens = await codeStep(ctx.app, mfaToken, first)
    expect(tokens.statusCode).toBe(200)
    const headers = bearer(tokens.json().access_token)
    expect((await disable(headers, first)).statusCode).toBe(400)
    expect((await disable(headers, second)).statusCode).toBe(204)
    expect((await events(user.id, 'mfa.disabled')).map((event) => event.details)).toEqual([{ method: 'recovery_code', target_user_id: user.id }])
  })

  it('a code already used to sign in cannot turn MFA off or replace the codes', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    clock.step()
    const code = codeAt(user.secret, clock.now)
    const { mfaToken } = await passwordStep(ctx.app, user.email)
    const tokens = await codeStep(ctx.app, mfaToken, code)
    const headers = bearer(tokens.json().access_token)
    expect((await disable(headers, code)).statusCode).toBe(400)
    expect((await regenerate(headers, code)).statusCode).toBe(400)
    expect((await me(headers)).json().mfa_enabled).toBe(true)
  })

  it('wrong codes lock the account’s re-authentication, even with the right password each time', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    clock.step()
    const right = codeAt(user.secret, clock.now)
    const wrong = right === '000000' ? '000001' : '000000'
    for (let i = 0; i < 5; i++) expect((await disable(user.headers, wrong)).statusCode).toBe(400)
    const locked = await disable(user.headers, right)
    expect(locked.statusCode).toBe(429)
    expect((await me(user.headers)).json().mfa_enabled).toBe(true)
  })

  it('a service client’s token has no account to manage', async () => {
    const client = await serviceClient(ctx.app, ['users:read'])
    const token = (
      await tokenRequest(ctx.app, { grant_type: 'client_credentials' }, { authorization: basicAuth(client.clientId, client.clientSecret) })
    ).json<{ access_token: string }>().access_token
    expect((await startEnrolment(ctx.app, bearer(token))).statusCode).toBe(403)
    expect((await ctx.app.inject({ method: 'POST', url: '/users/me/mfa/totp', payload: { current_password: PASSWORD } })).statusCode).toBe(401)
  })
})

describe('recovery by an admin', () => {
  it('turns a user’s MFA off: their sessions end, their second factors go, it is audited, the password alone signs in', async () => {
    const clock = stepClock(ctx.app)
    const admin = await adminWithToken(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const answer = await ctx.app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: admin.headers, payload: { mfa_enabled: false } })
    expect(answer.statusCode).toBe(200)
    expect(answer.json().mfa_enabled).toBe(false)
    expect((await me(user.headers)).statusCode).toBe(401)
    expect(await ctx.app.prisma.totpFactor.count({ where: { userId: user.id } })).toBe(0)
    expect(await ctx.app.prisma.mfaRecoveryCode.count({ where: { userId: user.id } })).toBe(0)
    const [event] = await events(admin.id, 'mfa.disabled')
    expect(event?.details).toEqual({ target_user_id: user.id, by: 'admin' })
    const session = await ctx.app.prisma.session.findFirstOrThrow({ where: { userId: user.id, endReason: { not: null } } })
    expect(session.endReason).toBe('mfa_reset')
    expect((await passwordStep(ctx.app, user.email)).response.statusCode).toBe(200)

    // Again: nothing to turn off, nothing ends.
    const sessions = await liveSessions(user.id)
    await ctx.app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: admin.headers, payload: { mfa_enabled: false } })
    expect(await liveSessions(user.id)).toBe(sessions)
    expect(await events(admin.id, 'mfa.disabled')).toHaveLength(1)
  })

  it('only to false, and an admin’s MFA only with every administrative scope', async () => {
    const clock = stepClock(ctx.app)
    const admin = await adminWithToken(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const on = await ctx.app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: admin.headers, payload: { mfa_enabled: true } })
    expect(on.statusCode).toBe(400)

    const otherAdmin = await adminWithToken(ctx.app)
    const { secret } = (await startEnrolment(ctx.app, otherAdmin.headers)).json<{ secret: string }>()
    expect((await confirm(ctx.app, otherAdmin.headers, codeAt(secret, clock.now))).statusCode).toBe(200)
    const narrow = await login(ctx.app, admin.email, PASSWORD, 'users:write')
    const refused = await ctx.app.inject({
      method: 'PATCH',
      url: `/users/${otherAdmin.id}`,
      headers: bearer(narrow.access_token),
      payload: { mfa_enabled: false }
    })
    expect(refused.statusCode).toBe(403)
    expect(await ctx.app.prisma.totpFactor.count({ where: { userId: otherAdmin.id } })).toBe(1)
  })

  it('a password change does not turn MFA off', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const changed = await ctx.app.inject({
      method: 'PUT',
      url: '/users/me/password',
      headers: user.headers,
      remoteAddress: clientAddress(),
      payload: { current_password: PASSWORD, new_password: 'a new and longer passphrase' }
    })
    expect(changed.statusCode).toBe(204)
    expect((await me(user.headers)).json().mfa_enabled).toBe(true)
    const answer = await tokenRequest(ctx.app, { grant_type: 'password', username: user.email, password: 'a new and longer passphrase' })
    expect(answer.statusCode).toBe(403)
  })
})

describe('secrets at rest', () => {
  it('a secret copied onto another account does not open there: no sign-in', async () => {
    const clock = stepClock(ctx.app)
    const [victim, attacker] = [await mfaUser(ctx.app, clock), await mfaUser(ctx.app, clock)]
    // An attacker who can write to the database copies their own sealed secret over the victim's.
    const theirs = await ctx.app.prisma.totpFactor.findUniqueOrThrow({ where: { userId: attacker.id } })
    const own = await ctx.app.prisma.totpFactor.findUniqueOrThrow({ where: { userId: victim.id } })
    await ctx.app.prisma.totpFactor.update({ where: { userId: victim.id }, data: { secret: theirs.secret } })
    try {
      const { mfaToken } = await passwordStep(ctx.app, victim.email)
      clock.step()
      const answer = await codeStep(ctx.app, mfaToken, codeAt(attacker.secret, clock.now))
      // Not a client's mistake but the database's: the generic 500, the details in the log.
      expect(answer.statusCode).toBe(500)
      expect(answer.json()).toEqual({ type: 'about:blank', title: 'Internal Server Error', status: 500, detail: 'An unexpected error occurred.' })
      expect(await ctx.app.prisma.session.count({ where: { userId: victim.id, amr: { has: 'otp' } } })).toBe(0)
    } finally {
      await ctx.app.prisma.totpFactor.update({ where: { userId: victim.id }, data: { secret: own.secret } })
    }
  })

  it('the key rotates: secrets sealed with the previous key keep working, and re-encryption moves them to the new one', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const newKey = randomBytes(32).toString('base64')
    const rotated = await buildApp({ MFA_ENCRYPTION_KEY: newKey, MFA_PREVIOUS_ENCRYPTION_KEYS: TEST_MFA_KEY })
    try {
      const rotatedClock = stepClock(rotated, clock.now)
      await signIn(rotated, rotatedClock, user)
      const before = (await rotated.prisma.totpFactor.findUniqueOrThrow({ where: { userId: user.id } })).secret
      expect(rotated.mfa.keys.isCurrent(before)).toBe(false)
      // The operator's command, run as the README says, in the service's environment with both keys.
      const run = await reencrypt({ MFA_ENCRYPTION_KEY: newKey, MFA_PREVIOUS_ENCRYPTION_KEYS: TEST_MFA_KEY })
      expect(run, run.stderr).toMatchObject({ code: 0, stderr: '' })
      expect(run.stdout).toMatch(/^Re-encrypted [1-9]\d* TOTP secrets? with the current key\.$/m)
      const after = (await rotated.prisma.totpFactor.findUniqueOrThrow({ where: { userId: user.id } })).secret
      expect(rotated.mfa.keys.isCurrent(after)).toBe(true)
      expect((await rotated.mfa.resealSecrets()).rewritten).toBe(0)
    } finally {
      await rotated.close()
    }
    // The new key alone now opens it.
    const newOnly = await buildApp({ MFA_ENCRYPTION_KEY: newKey })
    try {
      const newClock = stepClock(newOnly, clock.now + 10 * 30_000)
      await signIn(newOnly, newClock, user)
    } finally {
      await newOnly.close()
    }
  })
})

describe('the audit trail', () => {
  it('records enrolment, confirmation, the password step, codes right and wrong, and turning off', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const { mfaToken } = await passwordStep(ctx.app, user.email)
    clock.step()
    const right = codeAt(user.secret, clock.now)
    await codeStep(ctx.app, mfaToken, right === '000000' ? '000001' : '000000')
    await codeStep(ctx.app, mfaToken, right)
    clock.step()
    await disable(user.headers, codeAt(user.secret, clock.now))
    await ctx.app.auditLog.flush()
    const kinds = (await ctx.app.prisma.auditEvent.findMany({ where: { userId: user.id }, orderBy: { createdAt: 'asc' } }))
      .map((event) => event.kind)
      .filter((kind) => kind.startsWith('mfa.') || kind.startsWith('login.'))
    expect(kinds).toEqual([
      'login.success',
      'mfa.enrolment_started',
      'mfa.enabled',
      'login.mfa_required',
      'mfa.failure',
      'login.success',
      'mfa.success',
      'mfa.disabled'
    ])
  })

  it('shows mfa_enabled to admins reading users, and never a secret', async () => {
    const clock = stepClock(ctx.app)
    const admin = await adminWithToken(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const read = await ctx.app.inject({ method: 'GET', url: `/users/${user.id}`, headers: admin.headers })
    expect(read.json()).toMatchObject({ id: user.id, mfa_enabled: true })
    expect(read.body).not.toContain(user.secret)
    const audit = await ctx.app.inject({ method: 'GET', url: `/audit-events?user_id=${user.id}&limit=100`, headers: admin.headers })
    expect(audit.statusCode).toBe(200)
    expect(audit.body).not.toContain(user.secret)
    for (const code of user.recoveryCodes) expect(audit.body).not.toContain(code)
  })
})

describe('the docs page', () => {
  it('documents the MFA routes, the mfa-otp grant and the mfa_required answer', async () => {
    const document = (await ctx.app.inject({ method: 'GET', url: '/docs/json' })).json<{
      paths: Record<string, Record<string, { tags?: string[]; description?: string; responses: Record<string, { content?: Record<string, { schema?: { properties?: Record<string, unknown> } }> }> }>>
      info: { description: string }
    }>()
    for (const [path, method] of [
      ['/users/me/mfa/totp', 'post'],
      ['/users/me/mfa/totp/confirm', 'post'],
      ['/users/me/mfa/recovery-codes', 'post'],
      ['/users/me/mfa/totp', 'delete']
    ] as const) {
      expect(document.paths[path]?.[method]?.tags, `${method} ${path}`).toEqual(['Multi-factor sign-in'])
    }
    const token = document.paths['/auth/token']?.post
    expect(token?.description).toContain('urn:blog-api:grant-type:mfa-otp')
    expect(Object.keys(token?.responses['403']?.content?.['application/json']?.schema?.properties ?? {})).toEqual(['error', 'error_description', 'mfa_token'])
    expect(document.info.description).toMatch(/MFA on sign in with `browserSignIn`, whose page asks for the code/)
  })
})
