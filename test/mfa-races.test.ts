// Multi-factor sign-in under concurrency: the same code or the same
// mfa_token sent twice at once, wrong codes sent all at once, and changes of
// the account (MFA on or off, any security change) landing while a sign-in
// is between its password and its code, or while its code is being checked.
// Each race is made deterministic: a held password check
// (holdNextVerification) or a row lock held by a transaction of the test.
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { adminWithToken, clientAddress, decodeJwt, holdNextVerification, PASSWORD, tokenRequest, useApp, userWithToken } from './helper.js'
import { codeStep, confirm, mfaUser, passwordStep, startEnrolment, stepClock } from './mfa-helper.js'
import { codeAt } from './otp.js'

const ctx = useApp()

const sessionsWithOtp = (userId: string) => ctx.app.prisma.session.count({ where: { userId, amr: { has: 'otp' } } })

describe('codes and tokens sent twice at once', () => {
  it('one code with two mfa_tokens at once signs in once', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const [first, second] = [await passwordStep(ctx.app, user.email), await passwordStep(ctx.app, user.email)]
    clock.step()
    const code = codeAt(user.secret, clock.now)
    const answers = await Promise.all([codeStep(ctx.app, first.mfaToken, code), codeStep(ctx.app, second.mfaToken, code)])
    expect(answers.map((answer) => answer.statusCode).sort()).toEqual([200, 400])
    expect(await sessionsWithOtp(user.id)).toBe(1)
  })

  it('one recovery code with two mfa_tokens at once signs in once', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const [first, second] = [await passwordStep(ctx.app, user.email), await passwordStep(ctx.app, user.email)]
    const code = user.recoveryCodes[0] ?? ''
    const answers = await Promise.all([codeStep(ctx.app, first.mfaToken, code), codeStep(ctx.app, second.mfaToken, code)])
    expect(answers.map((answer) => answer.statusCode).sort()).toEqual([200, 400])
    expect(await sessionsWithOtp(user.id)).toBe(1)
    expect(await ctx.app.mfaRepository.unusedRecoveryCodes(user.id)).toBe(9)
  })

  it('one mfa_token with two right codes at once gives one session, and the losing code stays unused', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const { mfaToken } = await passwordStep(ctx.app, user.email)
    const answers = await Promise.all([
      codeStep(ctx.app, mfaToken, user.recoveryCodes[0] ?? ''),
      codeStep(ctx.app, mfaToken, user.recoveryCodes[1] ?? '')
    ])
    expect(answers.map((answer) => answer.statusCode).sort()).toEqual([200, 400])
    expect(await sessionsWithOtp(user.id)).toBe(1)
    expect(await ctx.app.mfaRepository.unusedRecoveryCodes(user.id)).toBe(9)
  })

  it('a dozen wrong codes at once: five are checked, the rest find the mfa_token used up', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const { mfaToken } = await passwordStep(ctx.app, user.email)
    clock.step()
    const right = codeAt(user.secret, clock.now)
    // Fewer than the account-wide lockout's 20 attempts, each from an address of its own: only the token's limit applies.
    const wrong = Array.from({ length: 12 }, (_, i) => String(i).padStart(6, '0')).filter((code) => code !== right)
    const answers = await Promise.all(wrong.map((code) => codeStep(ctx.app, mfaToken, code)))
    expect(answers.every((answer) => answer.statusCode === 400)).toBe(true)
    const checked = answers.filter((answer) => answer.json<{ error_description: string }>().error_description.startsWith('The code is incorrect'))
    expect(checked).toHaveLength(5)
    expect((await codeStep(ctx.app, mfaToken, right)).statusCode).toBe(400)
    expect(await ctx.app.prisma.auditEvent.count({ where: { userId: user.id, kind: 'mfa.failure' } })).toBe(5)
  })

  it('two confirmations of one enrolment at once turn MFA on once, with one set of recovery codes', async () => {
    const clock = stepClock(ctx.app)
    const user = await userWithToken(ctx.app)
    const { secret } = (await startEnrolment(ctx.app, user.headers)).json<{ secret: string }>()
    const answers = await Promise.all([
      confirm(ctx.app, user.headers, codeAt(secret, clock.now)),
      confirm(ctx.app, user.headers, codeAt(secret, clock.now, 1))
    ])
    const statuses = answers.map((answer) => answer.statusCode).sort()
    expect(statuses[0]).toBe(200)
    expect([400, 409]).toContain(statuses[1])
    const shown = answers.find((answer) => answer.statusCode === 200)?.json<{ recovery_codes: string[] }>().recovery_codes ?? []
    // The codes shown are the codes that work.
    const { mfaToken } = await passwordStep(ctx.app, user.email)
    expect((await codeStep(ctx.app, mfaToken, shown[0] ?? '')).statusCode).toBe(200)
    expect(await ctx.app.prisma.mfaRecoveryCode.count({ where: { userId: user.id } })).toBe(10)
  })
})

describe('the account changing during a sign-in', () => {
  it('MFA turned on while a password login is hashing: the login answers mfa_required, not a session', async () => {
    const clock = stepClock(ctx.app)
    const user = await userWithToken(ctx.app)
    const { secret } = (await startEnrolment(ctx.app, user.headers)).json<{ secret: string }>()
    const hold = holdNextVerification(ctx.app)
    const inFlight = tokenRequest(ctx.app, { grant_type: 'password', username: user.email, password: PASSWORD })
    await hold.arrived
    expect((await confirm(ctx.app, user.headers, codeAt(secret, clock.now))).statusCode).toBe(200)
    hold.release()
    const answer = await inFlight
    expect(answer.statusCode).toBe(403)
    expect(answer.json().error).toBe('mfa_required')
  })

  it('MFA turned off while a password login is hashing: the login gets a password-only session', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const hold = holdNextVerification(ctx.app)
    const inFlight = tokenRequest(ctx.app, { grant_type: 'password', username: user.email, password: PASSWORD })
    await hold.arrived
    const admin = await adminWithToken(ctx.app)
    const reset = await ctx.app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: admin.headers, payload: { mfa_enabled: false } })
    expect(reset.statusCode).toBe(200)
    hold.release()
    const answer = await inFlight
    expect(answer.statusCode).toBe(200)
    expect(decodeJwt(answer.json().access_token).claims.amr).toEqual(['pwd'])
  })

  it('MFA turned off by an admin while a sign-in waits for its code: the code is refused', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const { mfaToken } = await passwordStep(ctx.app, user.email)
    const admin = await adminWithToken(ctx.app)
    await ctx.app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: admin.headers, payload: { mfa_enabled: false } })
    clock.step()
    const answer = await codeStep(ctx.app, mfaToken, codeAt(user.secret, clock.now))
    expect(answer.statusCode).toBe(400)
    expect(answer.json().error).toBe('invalid_grant')
    expect(await sessionsWithOtp(user.id)).toBe(0)
  })

  it('a password changed while the code is being checked: no session, and the recovery code is not used up', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const { mfaToken } = await passwordStep(ctx.app, user.email)
    const client = new pg.Client({ connectionString: ctx.app.config.DATABASE_URL })
    await client.connect()
    try {
      // A change of the account's security state in progress: its row locked, the change not yet committed.
      await client.query('BEGIN')
      await client.query('UPDATE users SET security_version = security_version + 1 WHERE id = $1', [user.id])
      const redeeming = codeStep(ctx.app, mfaToken, user.recoveryCodes[0] ?? '', {}, clientAddress())
      // Whether or not the code check reached the lock yet, it must see the commit.
      await new Promise((resolve) => setTimeout(resolve, 100))
      await client.query('COMMIT')
      const answer = await redeeming
      expect(answer.statusCode).toBe(400)
      expect(answer.json().error_description).toMatch(/^The account changed while signing in\./)
    } finally {
      await client.end()
    }
    expect(await sessionsWithOtp(user.id)).toBe(0)
    expect(await ctx.app.mfaRepository.unusedRecoveryCodes(user.id)).toBe(10)
  })
})
