// The browser doors and email: the signup page sends the same verification
// link as `POST /auth/signup`; with REQUIRE_VERIFIED_EMAIL the sign-in page
// refuses an unverified account only after the right password (so it tells a
// guesser nothing), and an unverified account with MFA is refused before any
// second step, at the page and at the token endpoint alike.
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { appClient, buildApp, clientAddress, fileMailbox, PASSWORD, signup, tokenRequest, uniqueEmail, useApp } from './helper.js'
import { mfaUser, stepClock } from './mfa-helper.js'
import { pkce, TestBrowser } from './oauth-browser.js'
import { tokenIn } from './mailbox.js'

const ctx = useApp()
let strict: FastifyInstance
beforeAll(async () => {
  // A second instance on the same database, asking for verified email.
  strict = await buildApp({ REQUIRE_VERIFIED_EMAIL: true })
})
afterAll(async () => {
  await strict?.close()
})

const VERIFY = /Confirm your email/

async function atSignIn(app: FastifyInstance) {
  const client = await appClient(app, { firstParty: true })
  const { challenge } = pkce()
  const browser = new TestBrowser(app)
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: client.clientId,
    redirect_uri: client.redirectUri,
    scope: 'openid',
    state: 's1',
    code_challenge: challenge,
    code_challenge_method: 'S256'
  })
  const page = await browser.get(`/oauth/authorize?${query.toString()}`)
  expect(page.statusCode).toBe(200)
  return { browser, page }
}

describe('the signup page', () => {
  it('creates the account as POST /auth/signup does, and its verification link arrives', async () => {
    const browser = new TestBrowser(ctx.app)
    const form = await browser.get('/account/signup?return_to=%2Foauth%2Fauthorize')
    expect(form.statusCode).toBe(200)
    const email = uniqueEmail('page')
    const created = await browser.submit(form, '/account/signup', { email, full_name: 'Page Person', password: PASSWORD, return_to: '/oauth/authorize' })
    expect(created.statusCode, created.body).toBe(201)
    expect(created.body).toContain('A link to confirm your email address is on its way')
    const [welcome] = await (await fileMailbox()).waitFor(email)
    expect(welcome!.subject).toMatch(VERIFY)
    const verified = await ctx.app.inject({ method: 'POST', url: '/auth/email/verify', payload: { token: tokenIn(welcome!) }, remoteAddress: clientAddress() })
    expect(verified.statusCode).toBe(204)
  })

  it('a weak password comes back as the form with the policy, and creates nothing', async () => {
    const browser = new TestBrowser(ctx.app)
    const form = await browser.get('/account/signup?return_to=%2Foauth%2Fauthorize')
    const email = uniqueEmail('weak')
    const refused = await browser.submit(form, '/account/signup', { email, full_name: 'Weak', password: 'short', return_to: '/oauth/authorize' })
    expect(refused.statusCode).toBe(400)
    expect(refused.body).toContain('The password must be at least')
    expect(await ctx.app.prisma.user.count({ where: { email } })).toBe(0)
  })
})

describe('REQUIRE_VERIFIED_EMAIL at the sign-in page', () => {
  it('a wrong password gets the usual answer; the right one learns the email is unverified, and signs in once it is', async () => {
    const user = await signup(strict)
    const mailbox = await fileMailbox()
    await mailbox.waitFor(user.email)
    const { browser, page } = await atSignIn(strict)

    const wrong = await browser.submit(page, '/oauth/authorize', { email: user.email, password: 'not the password' })
    expect(wrong.statusCode).toBe(401)
    expect(wrong.body).toContain('The email or password is incorrect.')
    expect(wrong.body).not.toContain('not verified')

    const right = await browser.submit(wrong, '/oauth/authorize', { email: user.email, password: PASSWORD })
    expect(right.statusCode).toBe(403)
    expect(right.headers['content-type']).toContain('text/html')
    expect(right.body).toContain('not verified yet')
    expect(browser.cookies.has('bapi_signin')).toBe(false)
    expect(await strict.prisma.browserSession.count({ where: { userId: user.id } })).toBe(0)

    const link = tokenIn((await mailbox.waitFor(user.email))[0]!)
    expect((await strict.inject({ method: 'POST', url: '/auth/email/verify', payload: { token: link }, remoteAddress: clientAddress() })).statusCode).toBe(204)
    const signedIn = await browser.submit(right, '/oauth/authorize', { email: user.email, password: PASSWORD })
    expect(signedIn.statusCode, signedIn.body).toBe(303)
    expect(browser.cookies.has('bapi_signin')).toBe(true)
  })

  it('an unverified account with MFA gets no second step, at the page or at the token endpoint', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    await ctx.app.prisma.user.update({ where: { id: user.id }, data: { emailVerifiedAt: null }, select: { id: true } })

    const grant = await tokenRequest(strict, { grant_type: 'password', username: user.email, password: PASSWORD })
    expect(grant.statusCode).toBe(400)
    expect(grant.json()).toEqual({ error: 'invalid_grant', error_description: expect.stringMatching(/not verified/) })
    expect(await strict.prisma.mfaChallenge.count({ where: { userId: user.id } })).toBe(0)

    const { browser, page } = await atSignIn(strict)
    const answer = await browser.submit(page, '/oauth/authorize', { email: user.email, password: PASSWORD })
    expect(answer.statusCode).toBe(403)
    expect(answer.body).not.toContain('name="code"')
    expect(await strict.prisma.mfaChallenge.count({ where: { userId: user.id } })).toBe(0)
  })
})
