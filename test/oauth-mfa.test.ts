// The second factor in the browser: an account with MFA signs in on the
// authorization endpoint's page with its password, then a code, through the
// same check as the token endpoint's mfa-otp grant (`fastify.mfa`). What an
// attacker would try: skip the code, reuse the page's mfa_token at the token
// endpoint (or the other way round), guess codes, or race a password change.
import type { LightMyRequestResponse } from 'fastify'
import { describe, expect, it } from 'vitest'
import { appClient, decodeJwt, PASSWORD, serviceClient, basicAuth, tokenRequest, useApp } from './helper.js'
import { codeStep, MFA_GRANT, mfaUser, passwordStep, stepClock } from './mfa-helper.js'
import { pkce, redirectParams, TestBrowser } from './oauth-browser.js'
import { codeAt } from './otp.js'

const ctx = useApp()

function authorizeUrl(params: Record<string, string>) {
  return `/oauth/authorize?${new URLSearchParams({ response_type: 'code', code_challenge_method: 'S256', ...params }).toString()}`
}

/** A browser at the sign-in page of a first-party app, for `scope`. */
async function atSignIn(scope = 'openid posts:write') {
  const app = await appClient(ctx.app, { firstParty: true })
  const { verifier, challenge } = pkce()
  const browser = new TestBrowser(ctx.app)
  const page = await browser.get(authorizeUrl({ client_id: app.clientId, redirect_uri: app.redirectUri, scope, state: 's1', code_challenge: challenge, nonce: 'n1' }))
  expect(page.statusCode).toBe(200)
  return { app, verifier, browser, page }
}

const mfaTokenOf = (page: LightMyRequestResponse) => /name="mfa_token" value="([^"]+)"/.exec(page.body)?.[1] ?? ''

describe('signing in with a second factor on the sign-in page', () => {
  it('asks for the code after the password; the code signs in, and the tokens and ID token say pwd and otp', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const { app, verifier, browser, page } = await atSignIn()

    const codePage = await browser.submit(page, '/oauth/authorize', { email: user.email, password: PASSWORD })
    expect(codePage.statusCode, codePage.body).toBe(200)
    expect(codePage.body).toContain('<label for="code">Code</label>')
    expect(codePage.body).toContain('autocomplete="one-time-code"')
    expect(codePage.headers['cache-control']).toBe('no-store')
    expect(codePage.headers['content-security-policy']).toContain('form-action')
    // The password alone is no sign-in: no cookie, and the app's next request gets the form again.
    expect(browser.cookies.has('bapi_signin')).toBe(false)
    expect(mfaTokenOf(codePage)).toMatch(/^bapi_mfa_/)

    clock.step()
    const wrong = codeAt(user.secret, clock.now) === '000000' ? '000001' : '000000'
    const again = await browser.submit(codePage, '/oauth/authorize', { code: wrong })
    expect(again.statusCode).toBe(401)
    expect(again.body).toContain('The code is incorrect.')
    expect(browser.cookies.has('bapi_signin')).toBe(false)

    const back = await browser.submit(again, '/oauth/authorize', { code: codeAt(user.secret, clock.now) })
    expect(back.statusCode, back.body).toBe(303)
    expect(browser.cookies.has('bapi_signin')).toBe(true)
    const { code, state } = redirectParams(back)
    expect(state).toBe('s1')
    const exchange = await tokenRequest(ctx.app, { grant_type: 'authorization_code', code: code ?? '', redirect_uri: app.redirectUri, code_verifier: verifier, client_id: app.clientId })
    expect(exchange.statusCode, exchange.body).toBe(200)
    const tokens = exchange.json()
    expect(decodeJwt(tokens.id_token).claims).toMatchObject({ sub: user.id, nonce: 'n1', amr: ['pwd', 'otp'] })
    expect(decodeJwt(tokens.access_token).claims.amr).toEqual(['pwd', 'otp'])
    // A refresh keeps how the user signed in.
    const refreshed = await tokenRequest(ctx.app, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: app.clientId })
    expect(decodeJwt(refreshed.json().access_token).claims.amr).toEqual(['pwd', 'otp'])

    // The browser stays signed in with both factors: another request goes straight on.
    const second = pkce()
    const straight = await browser.get(authorizeUrl({ client_id: app.clientId, redirect_uri: app.redirectUri, scope: 'openid', code_challenge: second.challenge }))
    expect(straight.statusCode).toBe(303)
    const next = await tokenRequest(ctx.app, {
      grant_type: 'authorization_code',
      code: redirectParams(straight).code ?? '',
      redirect_uri: app.redirectUri,
      code_verifier: second.verifier,
      client_id: app.clientId
    })
    expect(decodeJwt(next.json().id_token).claims.amr).toEqual(['pwd', 'otp'])
  })

  it('a recovery code works on the page too, once', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const recovery = user.recoveryCodes[0] ?? ''
    const first = await atSignIn()
    const codePage = await first.browser.submit(first.page, '/oauth/authorize', { email: user.email, password: PASSWORD })
    expect((await first.browser.submit(codePage, '/oauth/authorize', { code: recovery.toUpperCase() })).statusCode).toBe(303)

    const second = await atSignIn()
    const codePageAgain = await second.browser.submit(second.page, '/oauth/authorize', { email: user.email, password: PASSWORD })
    const reused = await second.browser.submit(codePageAgain, '/oauth/authorize', { code: recovery })
    expect(reused.statusCode).toBe(401)
    expect(second.browser.cookies.has('bapi_signin')).toBe(false)
  })

  it('a wrong password is the same page and message as for an account without MFA: nothing tells that a second factor exists', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const { browser, page } = await atSignIn()
    const answer = await browser.submit(page, '/oauth/authorize', { email: user.email, password: 'not the password at all' })
    expect(answer.statusCode).toBe(401)
    expect(answer.body).toContain('The email or password is incorrect.')
    expect(answer.body).not.toContain('name="mfa_token"')
  })

  it('the page’s mfa_token is no use at the token endpoint, and a token endpoint’s is no use on the page', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const { browser, page } = await atSignIn()
    const codePage = await browser.submit(page, '/oauth/authorize', { email: user.email, password: PASSWORD })
    clock.step()
    const right = codeAt(user.secret, clock.now)
    const atTokenEndpoint = await codeStep(ctx.app, mfaTokenOf(codePage), right)
    expect(atTokenEndpoint.statusCode).toBe(400)
    expect(atTokenEndpoint.json()).toMatchObject({ error: 'invalid_grant' })
    expect(atTokenEndpoint.json()).not.toHaveProperty('access_token')

    const grantStep = await passwordStep(ctx.app, user.email)
    const onThePage = await browser.submit(codePage, '/oauth/authorize', { mfa_token: grantStep.mfaToken, code: right })
    expect(onThePage.statusCode).toBe(401)
    expect(onThePage.body).toContain('Sign in again.')
    expect(browser.cookies.has('bapi_signin')).toBe(false)
    // Neither token was spent by the other door: each still works where it belongs (with the next code, as each code works once).
    clock.step()
    expect((await codeStep(ctx.app, grantStep.mfaToken, codeAt(user.secret, clock.now))).statusCode).toBe(200)
    clock.step()
    expect((await browser.submit(codePage, '/oauth/authorize', { code: codeAt(user.secret, clock.now) })).statusCode).toBe(303)
  })

  it('wrong codes lock the browser out like wrong passwords, and five end the page’s sign-in', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const { browser, page } = await atSignIn()
    let answer = await browser.submit(page, '/oauth/authorize', { email: user.email, password: PASSWORD })
    clock.step()
    const right = codeAt(user.secret, clock.now)
    const wrong = right === '000000' ? '000001' : '000000'
    // The password step counts until a code is right: with four wrong codes, five failures, and this address is locked out.
    for (let i = 0; i < 4; i++) {
      answer = await browser.submit(answer, '/oauth/authorize', { code: wrong })
      expect(answer.statusCode).toBe(401)
      expect(answer.body).toContain('The code is incorrect.')
    }
    const locked = await browser.submit(answer, '/oauth/authorize', { code: right })
    expect(locked.statusCode).toBe(429)
    expect(locked.headers['content-type']).toContain('text/html')
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0)

    // From another address the token still has one code; a fifth wrong one ends it.
    const elsewhere = new TestBrowser(ctx.app)
    for (const [name, value] of browser.cookies) elsewhere.cookies.set(name, value)
    const last = await elsewhere.submit(answer, '/oauth/authorize', { code: wrong })
    expect(last.statusCode).toBe(401)
    expect(last.body).toContain('that was the last try')
    expect(last.body).toContain('<label for="password">Password</label>')
    // The right code with the used-up token: still no sign-in.
    const late = await elsewhere.submit(answer, '/oauth/authorize', { code: right })
    expect(late.statusCode).toBe(401)
    expect(elsewhere.cookies.has('bapi_signin')).toBe(false)
  })

  it('a password change between the password and the code: no sign-in', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const { browser, page } = await atSignIn()
    const codePage = await browser.submit(page, '/oauth/authorize', { email: user.email, password: PASSWORD })
    const changed = await ctx.app.inject({
      method: 'PUT',
      url: '/users/me/password',
      headers: user.headers,
      payload: { current_password: PASSWORD, new_password: 'a whole new passphrase' }
    })
    expect(changed.statusCode).toBe(204)
    clock.step()
    const answer = await browser.submit(codePage, '/oauth/authorize', { code: codeAt(user.secret, clock.now) })
    expect(answer.statusCode).toBe(409)
    expect(answer.body).toContain('Sign in again.')
    expect(browser.cookies.has('bapi_signin')).toBe(false)
  })

  it('the code form needs its CSRF token and an mfa_token; hostile values get a page, never a sign-in', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const { browser, page } = await atSignIn()
    const codePage = await browser.submit(page, '/oauth/authorize', { email: user.email, password: PASSWORD })
    clock.step()
    const right = codeAt(user.secret, clock.now)
    const forged = await browser.submit(codePage, '/oauth/authorize', { _csrf: 'forged', code: right })
    expect(forged.statusCode).toBe(403)
    const hostile: Array<Record<string, string>> = [{ mfa_token: '' }, { mfa_token: 'bapi_mfa_\u0000' }, { code: '\uD800' }, { code: 'x'.repeat(65) }, { mfa_token: 'bapi_mfa_'.padEnd(201, 'A') }]
    for (const fields of hostile) {
      const answer = await browser.submit(codePage, '/oauth/authorize', { code: right, ...fields })
      expect(answer.statusCode, JSON.stringify(fields)).toBeGreaterThanOrEqual(400)
      expect(answer.statusCode, JSON.stringify(fields)).toBeLessThan(500)
      expect(answer.headers['content-type']).toContain('text/html')
    }
    expect(browser.cookies.has('bapi_signin')).toBe(false)
    // The token survived the refused forms: the right code still signs in.
    expect((await browser.submit(codePage, '/oauth/authorize', { code: right })).statusCode).toBe(303)
  })
})

describe('the mfa-otp grant and client registrations', () => {
  it('is for the clients that may use the password grant', async () => {
    const clock = stepClock(ctx.app)
    const user = await mfaUser(ctx.app, clock)
    const service = await serviceClient(ctx.app, ['users:read'])
    const auth = { authorization: basicAuth(service.clientId, service.clientSecret) }
    const { mfaToken } = await passwordStep(ctx.app, user.email)
    clock.step()
    const answer = await tokenRequest(ctx.app, { grant_type: MFA_GRANT, mfa_token: mfaToken, otp: codeAt(user.secret, clock.now) }, auth)
    expect(answer.statusCode).toBe(400)
    expect(answer.json()).toEqual({ error: 'unauthorized_client', error_description: `This client may not use the ${MFA_GRANT} grant.` })
  })
})
