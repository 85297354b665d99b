// Password reset, email verification and email change, end to end: every email
// goes through SMTP to a real SMTP server (test/mailbox.ts), and every link is
// used as a person would, with the token taken from the email. Each rule of the
// links is attacked: reuse, expiry, replacement by a newer link, a password or
// email changed meanwhile, a link of the wrong kind, malformed tokens, two uses
// at once.
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { describe, expect, it } from 'vitest'
import { createTestDatabase } from './database.js'
import {
  bearer,
  buildApp,
  clientAddress,
  fileMailbox,
  login,
  PASSWORD,
  signup,
  tokenRequest,
  uniqueEmail,
  useApp,
  userWithToken
} from './helper.js'
import { type Received, linkIn, tokenIn } from './mailbox.js'

const ctx = useApp()
const NEW_PASSWORD = 'a brand new passphrase for this account'

const post = (url: string, payload: object, headers: Record<string, string> = {}, remoteAddress = clientAddress()) =>
  ctx.app.inject({ method: 'POST', url, payload, headers, remoteAddress })

const forgot = (email: string, remoteAddress = clientAddress()) => post('/auth/password/forgot', { email }, {}, remoteAddress)
const reset = (token: string, newPassword = NEW_PASSWORD, remoteAddress = clientAddress()) =>
  post('/auth/password/reset', { token, new_password: newPassword }, {}, remoteAddress)
const verify = (token: string) => post('/auth/email/verify', { token })

/** The `count`-th email to `address` whose subject matches. */
async function email(address: string, subject: RegExp, count = 1): Promise<Received> {
  const mailbox = await fileMailbox()
  await expect
    .poll(() => mailbox.to(address).filter((message) => subject.test(message.subject)).length, { timeout: 15_000, interval: 50 })
    .toBeGreaterThanOrEqual(count)
  const matching = mailbox.to(address).filter((message) => subject.test(message.subject))
  return matching[count - 1] as Received
}

const RESET = /Reset your/
const VERIFY = /Confirm your email/
const CHANGE = /Confirm your new email/
const NOTICE = /about to change/

/** Everything queued has been delivered (or dropped). */
const settle = () => ctx.app.mail.drain()

/** As if the account's last email of each kind went out more than a minute ago. */
async function aMinuteLater(app: FastifyInstance, userId: string) {
  await app.prisma.$executeRaw`
    UPDATE mail_outbox SET created_at = created_at - interval '2 minutes', issued_at = issued_at - interval '2 minutes'
    WHERE user_id = ${userId}::uuid`
}

function expectInvalidLink(response: LightMyRequestResponse) {
  expect(response.statusCode).toBe(400)
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/)
  expect(response.json()).toMatchObject({ status: 400, detail: expect.stringMatching(/invalid, expired or already used/) })
}

async function auditKinds(userId: string) {
  const events = await ctx.app.prisma.auditEvent.findMany({ where: { userId }, orderBy: { createdAt: 'asc' }, select: { kind: true } })
  return events.map((event) => event.kind)
}

describe('forgot password', () => {
  it('answers the same whether or not an active account has the email; only an active account gets a link', async () => {
    const active = await signup(ctx.app)
    const inactive = await signup(ctx.app)
    await ctx.app.prisma.user.update({ where: { id: inactive.id }, data: { isActive: false } })
    const unknown = uniqueEmail('nobody')

    const answers = await Promise.all([forgot(active.email), forgot(unknown), forgot(inactive.email)])
    for (const answer of answers) {
      expect(answer.statusCode).toBe(202)
      expect(answer.headers['cache-control']).toBe('no-store')
    }
    const [first, ...rest] = answers.map((answer) => answer.body)
    expect(new Set(rest)).toEqual(new Set([first]))
    expect(JSON.parse(first ?? '{}')).toEqual({ message: expect.stringMatching(/^If an active account has this email address/) })

    const message = await email(active.email, RESET)
    await settle()
    const mailbox = await fileMailbox()
    expect(mailbox.to(unknown)).toEqual([])
    expect(mailbox.to(inactive.email).filter((m) => RESET.test(m.subject))).toEqual([])
    expect(linkIn(message).href).toMatch(/^http:\/\/localhost:3000\/account\/reset-password\?token=bapi_pr_[\w-]{43}$/)
    // Recorded for the account that exists (with where it was asked from); nothing about emails that have none.
    expect(await auditKinds(active.id)).toContain('password.reset_requested')
    expect(await ctx.app.prisma.mailOutbox.count({ where: { recipient: unknown } })).toBe(0)
  })

  it('does the same work for an unknown email as for an account: one row written, the account looked for after the answer', async () => {
    // An app of its own, on a database of its own, sending no email: nothing delivers the rows it writes.
    const database = await createTestDatabase()
    const quiet = await buildApp({ DATABASE_URL: database.url, MAIL_DISABLED: true, MAIL_URL: undefined })
    try {
      const user = await signup(quiet)
      const unknown = uniqueEmail('nobody')
      const source = { ip: '203.0.113.5', userAgent: 'test' }
      // The repository call the route makes: the same row, and nothing else, for both.
      await quiet.mailOutboxRepository.enqueuePasswordReset(user.email, source)
      await quiet.mailOutboxRepository.enqueuePasswordReset(unknown.toUpperCase(), source)
      const rows = await quiet.prisma.mailOutbox.findMany({
        select: { recipient: true, userId: true, status: true, requestIp: true, securityVersion: true, attempts: true }
      })
      const row = { userId: null, status: 'queued', requestIp: source.ip, securityVersion: null, attempts: 0 }
      expect(rows).toEqual(expect.arrayContaining([{ recipient: user.email, ...row }, { recipient: unknown, ...row }]))
      expect(rows).toHaveLength(2)
      expect(await quiet.prisma.auditEvent.count({ where: { kind: 'password.reset_requested' } })).toBe(0)
    } finally {
      await quiet.close()
      await database.drop()
    }
  })

  it('sends at most one reset email a minute to an account, however often it is asked for', async () => {
    const user = await signup(ctx.app)
    for (let i = 0; i < 4; i++) expect((await forgot(user.email)).statusCode).toBe(202)
    await email(user.email, RESET)
    await settle()
    expect((await fileMailbox()).to(user.email).filter((m) => RESET.test(m.subject))).toHaveLength(1)
    const statuses = await ctx.app.prisma.mailOutbox.groupBy({ by: ['status'], where: { userId: user.id, kind: 'password_reset' }, _count: true })
    expect(Object.fromEntries(statuses.map((row) => [row.status, row._count]))).toEqual({ sent: 1, dropped: 3 })
  })

  it('is rate limited per address, at the default limit', async () => {
    const address = clientAddress()
    const answers = []
    for (let i = 0; i < 21; i++) answers.push((await forgot(uniqueEmail('flood'), address)).statusCode)
    expect(answers.slice(0, 20).every((status) => status === 202)).toBe(true)
    expect(answers[20]).toBe(429)
  })
})

describe('password reset', () => {
  it('sets the new password with the link, ends every session, and works once', async () => {
    const user = await userWithToken(ctx.app)
    const other = await login(ctx.app, user.email)
    expect((await forgot(user.email)).statusCode).toBe(202)
    const token = tokenIn(await email(user.email, RESET))
    expect(token).toMatch(/^bapi_pr_[A-Za-z0-9_-]{43}$/)

    const done = await reset(token)
    expect(done.statusCode).toBe(204)
    expect(done.headers['cache-control']).toBe('no-store')
    // Every session has ended, access and refresh tokens alike.
    for (const session of [user.tokens, other]) {
      expect((await ctx.app.inject({ method: 'GET', url: '/users/me', headers: bearer(session.access_token) })).statusCode).toBe(401)
      const refresh = await tokenRequest(ctx.app, { grant_type: 'refresh_token', refresh_token: session.refresh_token ?? '' })
      expect(refresh.statusCode).toBe(400)
    }
    expect((await tokenRequest(ctx.app, { grant_type: 'password', username: user.email, password: PASSWORD })).statusCode).toBe(400)
    const fresh = await login(ctx.app, user.email, NEW_PASSWORD)
    // The link proved the mailbox: the email counts as verified.
    const me = await ctx.app.inject({ method: 'GET', url: '/users/me', headers: bearer(fresh.access_token) })
    expect(me.json()).toMatchObject({ email_verified: true })

    // Single use: the same link again is refused, and changes nothing.
    expectInvalidLink(await reset(token, 'yet another new passphrase'))
    expect((await login(ctx.app, user.email, NEW_PASSWORD)).access_token).toBeDefined()
    expect(await auditKinds(user.id)).toEqual(expect.arrayContaining(['password.reset_requested', 'password.reset']))
    const ended = await ctx.app.prisma.session.findMany({ where: { userId: user.id, endReason: 'password_reset' } })
    expect(ended).toHaveLength(2)
  })

  it('refuses a weak new password without spending the link', async () => {
    const user = await signup(ctx.app)
    await forgot(user.email)
    const token = tokenIn(await email(user.email, RESET))
    const weak = await reset(token, 'short')
    expect(weak.statusCode).toBe(400)
    expect(weak.json().errors).toEqual([{ field: 'new_password', message: expect.stringMatching(/at least 12/) }])
    expect((await reset(token, user.email)).json().errors).toEqual([{ field: 'new_password', message: 'must not be your email address' }])
    expect((await reset(token)).statusCode).toBe(204)
  })

  it('two uses of one link at once: exactly one sets its password', async () => {
    const user = await signup(ctx.app)
    await forgot(user.email)
    const token = tokenIn(await email(user.email, RESET))
    const passwords = ['the first racing passphrase', 'the second racing passphrase']
    const answers = await Promise.all(passwords.map((password) => reset(token, password)))
    expect(answers.map((answer) => answer.statusCode).sort()).toEqual([204, 400])
    const winner = passwords[answers.findIndex((answer) => answer.statusCode === 204)] ?? ''
    const loser = passwords.find((password) => password !== winner) ?? ''
    expect((await login(ctx.app, user.email, winner)).access_token).toBeDefined()
    expect((await tokenRequest(ctx.app, { grant_type: 'password', username: user.email, password: loser })).statusCode).toBe(400)
  })

  it('a link dies when the password changes by another route', async () => {
    const user = await userWithToken(ctx.app)
    await forgot(user.email)
    const token = tokenIn(await email(user.email, RESET))
    const changed = await ctx.app.inject({
      method: 'PUT',
      url: '/users/me/password',
      headers: user.headers,
      payload: { current_password: PASSWORD, new_password: 'changed the usual way, meanwhile' }
    })
    expect(changed.statusCode).toBe(204)
    expectInvalidLink(await reset(token))
    expect((await login(ctx.app, user.email, 'changed the usual way, meanwhile')).access_token).toBeDefined()
  })

  it('a link dies when the account is deactivated, and a deactivated account gets none', async () => {
    const user = await signup(ctx.app)
    await forgot(user.email)
    const token = tokenIn(await email(user.email, RESET))
    await ctx.app.usersRepository.adminUpdate(user.id, { isActive: false }, () => undefined)
    expectInvalidLink(await reset(token))
  })

  it('an expired link is refused', async () => {
    const user = await signup(ctx.app)
    await forgot(user.email)
    const token = tokenIn(await email(user.email, RESET))
    const row = await ctx.app.prisma.emailToken.findFirstOrThrow({ where: { userId: user.id, kind: 'password_reset' } })
    // Made RESET_TOKEN_TTL (30 minutes) after it was issued.
    expect(row.expiresAt.getTime() - row.createdAt.getTime()).toBe(30 * 60_000)
    await ctx.app.prisma.emailToken.update({ where: { id: row.id }, data: { expiresAt: new Date(Date.now() - 1000) } })
    expectInvalidLink(await reset(token))
  })

  it('asking again (a minute later) replaces the link: only the newest works', async () => {
    const user = await signup(ctx.app)
    await forgot(user.email)
    const first = tokenIn(await email(user.email, RESET))
    await aMinuteLater(ctx.app, user.id)
    await forgot(user.email)
    const second = tokenIn(await email(user.email, RESET, 2))
    expect(second).not.toBe(first)
    expectInvalidLink(await reset(first))
    expect((await reset(second)).statusCode).toBe(204)
  })

  it('refuses malformed, unknown and wrong-kind tokens with the same 400, never a 5xx', async () => {
    const user = await signup(ctx.app)
    const verification = tokenIn(await email(user.email, VERIFY))
    const hostile = [
      'x',
      'bapi_pr_',
      `bapi_pr_${'A'.repeat(43)}`,
      `bapi_pr_${'A'.repeat(42)}=`,
      `bapi_rt_${'A'.repeat(43)}`,
      'bapi_pr_' + '\u202e'.repeat(43),
      "' OR 1=1 --",
      'a'.repeat(200),
      verification
    ]
    for (const token of hostile) expectInvalidLink(await reset(token))
    for (const token of ['', 'a'.repeat(201), 'bapi_pr_\u0000', '\ud800']) {
      const answer = await reset(token)
      expect(answer.statusCode, JSON.stringify(token)).toBe(400)
      expect(answer.json().errors[0].field).toBe('token')
    }
    // A verification link does not reset, and a reset link does not verify.
    await forgot(user.email)
    const resetToken = tokenIn(await email(user.email, RESET))
    expectInvalidLink(await verify(resetToken))
    expect((await reset(resetToken)).statusCode).toBe(204)
    expect((await verify(verification)).statusCode).toBe(400)
  })

  it('lifts the lockout for the device that reset the password; the attacker stays locked out', async () => {
    const user = await signup(ctx.app)
    const attacker = clientAddress()
    const owner = clientAddress()
    const guess = (address: string) =>
      tokenRequest(ctx.app, { grant_type: 'password', username: user.email, password: 'a guess at the password' }, {}, address)
    // Five from the attacker's address lock it; fifteen from elsewhere lock every untrusted device out.
    for (let i = 0; i < 5; i++) expect((await guess(attacker)).statusCode).toBe(400)
    for (let i = 0; i < 15; i++) expect((await guess(clientAddress())).statusCode).toBe(400)
    const before = await tokenRequest(ctx.app, { grant_type: 'password', username: user.email, password: PASSWORD }, {}, owner)
    expect(before.statusCode).toBe(429)

    await forgot(user.email, owner)
    const done = await reset(tokenIn(await email(user.email, RESET)), NEW_PASSWORD, owner)
    expect(done.statusCode).toBe(204)
    const device = done.cookies.find((cookie) => cookie.name.startsWith('bapi_device_'))
    expect(device).toMatchObject({ httpOnly: true, sameSite: 'Strict' })

    const withCookie = await tokenRequest(
      ctx.app,
      { grant_type: 'password', username: user.email, password: NEW_PASSWORD },
      { cookie: `${device?.name}=${device?.value}` },
      owner
    )
    expect(withCookie.statusCode).toBe(200)
    expect((await tokenRequest(ctx.app, { grant_type: 'password', username: user.email, password: NEW_PASSWORD }, {}, owner)).statusCode).toBe(200)
    expect((await tokenRequest(ctx.app, { grant_type: 'password', username: user.email, password: NEW_PASSWORD }, {}, attacker)).statusCode).toBe(429)
  })
})

describe('email verification', () => {
  it('signup sends a link; using it verifies the email, once', async () => {
    const user = await userWithToken(ctx.app)
    const message = await email(user.email, VERIFY)
    expect(linkIn(message).pathname).toBe('/account/verify-email')
    expect((await ctx.app.inject({ method: 'GET', url: '/users/me', headers: user.headers })).json().email_verified).toBe(false)
    expect((await verify(tokenIn(message))).statusCode).toBe(204)
    expect((await ctx.app.inject({ method: 'GET', url: '/users/me', headers: user.headers })).json().email_verified).toBe(true)
    expectInvalidLink(await verify(tokenIn(message)))
    expect(await auditKinds(user.id)).toContain('email.verified')
    const row = await ctx.app.prisma.mailOutbox.findFirstOrThrow({ where: { userId: user.id, kind: 'email_verification' } })
    expect(row.giveUpAt.getTime() - row.createdAt.getTime()).toBe(24 * 3600_000)
  })

  it('sends a fresh link on request (the earlier one dies), at most one a minute, and none once verified', async () => {
    const user = await userWithToken(ctx.app)
    const first = tokenIn(await email(user.email, VERIFY))
    const resend = () => post('/users/me/email/verification', {}, user.headers)
    // Within the minute of the signup's email: the same answer, nothing sent.
    const early = await resend()
    expect(early.statusCode).toBe(202)
    expect(early.json()).toEqual({ message: expect.any(String) })
    await settle()
    expect((await fileMailbox()).to(user.email).filter((m) => VERIFY.test(m.subject))).toHaveLength(1)

    await aMinuteLater(ctx.app, user.id)
    expect((await resend()).statusCode).toBe(202)
    const second = tokenIn(await email(user.email, VERIFY, 2))
    expectInvalidLink(await verify(first))
    expect((await verify(second)).statusCode).toBe(204)
    const done = await resend()
    expect(done.statusCode).toBe(409)
  })

  it('a service client has no email to verify', async () => {
    const response = await post('/users/me/email/verification', {})
    expect(response.statusCode).toBe(401)
  })
})

describe('REQUIRE_VERIFIED_EMAIL', () => {
  const strict = useApp({ REQUIRE_VERIFIED_EMAIL: true })

  it('refuses the password login of an unverified account only after the right password, and sends a fresh link', async () => {
    const user = await signup(strict.app)
    const mailbox = await fileMailbox()
    await expect.poll(() => mailbox.to(user.email).length, { timeout: 15_000 }).toBe(1)
    const wrong = await tokenRequest(strict.app, { grant_type: 'password', username: user.email, password: 'not the password' })
    expect(wrong.json()).toEqual({ error: 'invalid_grant', error_description: 'The email or password is incorrect.' })

    await aMinuteLater(strict.app, user.id)
    const right = await tokenRequest(strict.app, { grant_type: 'password', username: user.email, password: PASSWORD })
    expect(right.statusCode).toBe(400)
    expect(right.json()).toEqual({ error: 'invalid_grant', error_description: expect.stringMatching(/not verified/) })
    expect(await strict.app.prisma.session.count({ where: { userId: user.id } })).toBe(0)
    await expect.poll(() => mailbox.to(user.email).length, { timeout: 15_000 }).toBe(2)
    const token = tokenIn(mailbox.to(user.email)[1] as Received)
    expect((await strict.app.inject({ method: 'POST', url: '/auth/email/verify', payload: { token } })).statusCode).toBe(204)
    expect((await login(strict.app, user.email)).access_token).toBeDefined()
  })
})

describe('email change', () => {
  it('is pending until the link sent to the new address is used; the old address is told', async () => {
    const user = await userWithToken(ctx.app)
    const other = await login(ctx.app, user.email)
    const next = uniqueEmail('next')
    const asked = await ctx.app.inject({
      method: 'PATCH',
      url: '/users/me',
      headers: user.headers,
      payload: { email: next, current_password: PASSWORD }
    })
    expect(asked.statusCode).toBe(200)
    expect(asked.json()).toMatchObject({ email: user.email, pending_email: next })

    const notice = await email(user.email, NOTICE)
    expect(notice.text).toContain(next)
    expect(notice.text).not.toMatch(/token=/)
    const link = await email(next, CHANGE)
    // Until then the old email is the login, and nothing has ended.
    expect((await login(ctx.app, user.email)).access_token).toBeDefined()
    expect((await ctx.app.inject({ method: 'GET', url: '/users/me', headers: bearer(other.access_token) })).statusCode).toBe(200)

    expect((await verify(tokenIn(link))).statusCode).toBe(204)
    expect((await tokenRequest(ctx.app, { grant_type: 'password', username: user.email, password: PASSWORD })).statusCode).toBe(400)
    expect((await login(ctx.app, next)).access_token).toBeDefined()
    // The session that asked goes on; every other one has ended.
    expect((await ctx.app.inject({ method: 'GET', url: '/users/me', headers: user.headers })).json()).toMatchObject({ email: next, email_verified: true })
    expect((await ctx.app.inject({ method: 'GET', url: '/users/me', headers: bearer(other.access_token) })).statusCode).toBe(401)
    expect(await auditKinds(user.id)).toEqual(expect.arrayContaining(['email.change_requested', 'email.changed']))
  })

  it('is refused when the new address was taken meanwhile, and called off', async () => {
    const user = await userWithToken(ctx.app)
    const next = uniqueEmail('contested')
    await ctx.app.inject({ method: 'PATCH', url: '/users/me', headers: user.headers, payload: { email: next, current_password: PASSWORD } })
    const token = tokenIn(await email(next, CHANGE))
    await signup(ctx.app, { email: next })
    const refused = await verify(token)
    expect(refused.statusCode).toBe(409)
    const me = (await ctx.app.inject({ method: 'GET', url: '/users/me', headers: user.headers })).json()
    expect(me.email).toBe(user.email)
    expect(me).not.toHaveProperty('pending_email')
    expectInvalidLink(await verify(token))
  })

  it('a taken address is refused at once', async () => {
    const user = await userWithToken(ctx.app)
    const other = await signup(ctx.app)
    const refused = await ctx.app.inject({
      method: 'PATCH',
      url: '/users/me',
      headers: user.headers,
      payload: { email: other.email.toUpperCase(), current_password: PASSWORD }
    })
    expect(refused.statusCode).toBe(409)
  })

  it('a password change cancels it: the link sent before dies', async () => {
    const user = await userWithToken(ctx.app)
    const next = uniqueEmail('hijack')
    await ctx.app.inject({ method: 'PATCH', url: '/users/me', headers: user.headers, payload: { email: next, current_password: PASSWORD } })
    const token = tokenIn(await email(next, CHANGE))
    const changed = await ctx.app.inject({
      method: 'PUT',
      url: '/users/me/password',
      headers: user.headers,
      payload: { current_password: PASSWORD, new_password: NEW_PASSWORD }
    })
    expect(changed.statusCode).toBe(204)
    expect((await ctx.app.inject({ method: 'GET', url: '/users/me', headers: user.headers })).json()).not.toHaveProperty('pending_email')
    expectInvalidLink(await verify(token))
  })

  it('one change a minute; a newer change replaces the older one, and asking for the current email calls it off', async () => {
    const user = await userWithToken(ctx.app)
    const change = (email: string) =>
      ctx.app.inject({ method: 'PATCH', url: '/users/me', headers: user.headers, payload: { email, current_password: PASSWORD } })
    const first = uniqueEmail('first')
    expect((await change(first)).statusCode).toBe(200)
    const tooSoon = await change(uniqueEmail('second'))
    expect(tooSoon.statusCode).toBe(429)
    expect(Number(tooSoon.headers['retry-after'])).toBeGreaterThan(0)
    const firstToken = tokenIn(await email(first, CHANGE))

    await aMinuteLater(ctx.app, user.id)
    const second = uniqueEmail('second')
    expect((await change(second)).json()).toMatchObject({ pending_email: second })
    const secondToken = tokenIn(await email(second, CHANGE))
    expectInvalidLink(await verify(firstToken))

    const calledOff = await change(user.email)
    expect(calledOff.statusCode).toBe(200)
    expect(calledOff.json()).not.toHaveProperty('pending_email')
    expectInvalidLink(await verify(secondToken))
  })

  it('a fresh link for a pending change goes to the new address', async () => {
    const user = await userWithToken(ctx.app)
    await verify(tokenIn(await email(user.email, VERIFY)))
    const next = uniqueEmail('resent')
    await ctx.app.inject({ method: 'PATCH', url: '/users/me', headers: user.headers, payload: { email: next, current_password: PASSWORD } })
    await email(next, CHANGE)
    await aMinuteLater(ctx.app, user.id)
    expect((await post('/users/me/email/verification', {}, user.headers)).statusCode).toBe(202)
    const token = tokenIn(await email(next, CHANGE, 2))
    expect((await verify(token)).statusCode).toBe(204)
    expect((await login(ctx.app, next)).access_token).toBeDefined()
  })
})
