// Attacks on the browser sign-in (authorization code with PKCE, RFC 9700's
// threat list), each a test: what an attacker sends, and what must happen.
import { describe, expect, it } from 'vitest'
import type { LightMyRequestResponse } from 'fastify'
import { adminWithToken, appClient, bearer, holdNextVerification, PASSWORD, tokenRequest, useApp, userWithToken } from './helper.js'
import { hiddenFields, pkce, redirectParams, TestBrowser } from './oauth-browser.js'

const ctx = useApp()

type App = Awaited<ReturnType<typeof appClient>>

const authorizeUrl = (params: Record<string, string>) =>
  `/oauth/authorize?${new URLSearchParams({ response_type: 'code', code_challenge_method: 'S256', ...params }).toString()}`

/** Signs `user` in for `app` in a fresh browser (consenting if asked); answers the code and the browser. */
async function codeFor(user: { email: string }, app: App, extra: Record<string, string> = {}, challenge = pkce().challenge) {
  const browser = new TestBrowser(ctx.app)
  const page = await browser.get(authorizeUrl({ client_id: app.clientId, redirect_uri: app.redirectUri, scope: 'openid posts:write', code_challenge: challenge, ...extra }))
  let answer = await browser.submit(page, '/oauth/authorize', { email: user.email, password: PASSWORD })
  if (answer.statusCode === 200) answer = await browser.submit(answer, '/oauth/authorize', { decision: 'allow' })
  expect(answer.statusCode, answer.body).toBe(303)
  return { code: redirectParams(answer).code ?? '', browser, answer }
}

const exchange = (app: App, code: string, verifier: string, extra: Record<string, string> = {}) =>
  tokenRequest(ctx.app, { grant_type: 'authorization_code', code, redirect_uri: app.redirectUri, code_verifier: verifier, client_id: app.clientId, ...extra })

/** An error page of the service, not a redirect anywhere. */
function expectErrorPage(response: LightMyRequestResponse) {
  expect(response.statusCode, response.body).toBe(400)
  expect(response.headers.location).toBeUndefined()
  expect(response.headers['content-type']).toContain('text/html')
}

describe('PKCE', () => {
  it('a missing or wrong code_verifier gets no token, and does not burn the code', async () => {
    const user = await userWithToken(ctx.app)
    const app = await appClient(ctx.app, { firstParty: true })
    const { verifier, challenge } = pkce()
    const { code } = await codeFor(user, app, {}, challenge)
    const missing = await tokenRequest(ctx.app, { grant_type: 'authorization_code', code, redirect_uri: app.redirectUri, client_id: app.clientId })
    expect(missing.json().error).toBe('invalid_request')
    for (const wrong of [pkce().verifier, `${verifier}x`, verifier.slice(1), challenge, 'short']) {
      const answer = await exchange(app, code, wrong)
      expect(answer.statusCode).toBe(400)
      expect(answer.json().error).toBe('invalid_grant')
    }
    // The rightful client, with its verifier, still gets its tokens.
    expect((await exchange(app, code, verifier)).statusCode).toBe(200)
  })

  it('plain, a missing method or a missing challenge is sent back as invalid_request', async () => {
    const app = await appClient(ctx.app)
    const browser = new TestBrowser(ctx.app)
    const { challenge, verifier } = pkce()
    const cases: Array<Record<string, string>> = [
      { code_challenge: verifier, code_challenge_method: 'plain' },
      { code_challenge: challenge, code_challenge_method: '' },
      { code_challenge: '' },
      { code_challenge: 'not-a-sha-256' }
    ]
    for (const params of cases) {
      const answer = await browser.get(authorizeUrl({ client_id: app.clientId, redirect_uri: app.redirectUri, state: 's1', ...params }))
      expect(answer.statusCode).toBe(303)
      expect(redirectParams(answer)).toMatchObject({ error: 'invalid_request', state: 's1', iss: 'http://localhost:3000' })
    }
  })
})

describe('authorization codes', () => {
  it('a code used twice: the second use fails and ends what the first one issued', async () => {
    const user = await userWithToken(ctx.app)
    const app = await appClient(ctx.app, { firstParty: true })
    const { verifier, challenge } = pkce()
    const { code } = await codeFor(user, app, {}, challenge)
    const first = await exchange(app, code, verifier)
    expect(first.statusCode).toBe(200)
    const second = await exchange(app, code, verifier)
    expect(second.json().error).toBe('invalid_grant')
    expect((await ctx.app.inject({ method: 'GET', url: '/users/me', headers: bearer(first.json().access_token) })).statusCode).toBe(401)
    expect((await tokenRequest(ctx.app, { grant_type: 'refresh_token', refresh_token: first.json().refresh_token, client_id: app.clientId })).json().error).toBe('invalid_grant')
    const replay = await ctx.app.prisma.auditEvent.findFirst({ where: { userId: user.id, kind: 'authorization_code.replayed' } })
    expect(replay).not.toBeNull()
  })

  it('two exchanges of one code at once: exactly one wins, and it is ended by the other', async () => {
    const user = await userWithToken(ctx.app)
    const app = await appClient(ctx.app, { firstParty: true })
    const { verifier, challenge } = pkce()
    const { code } = await codeFor(user, app, {}, challenge)
    const answers = await Promise.all([exchange(app, code, verifier), exchange(app, code, verifier)])
    expect(answers.map((answer) => answer.statusCode).sort()).toEqual([200, 400])
    const winner = answers.find((answer) => answer.statusCode === 200)
    expect((await ctx.app.inject({ method: 'GET', url: '/users/me', headers: bearer(winner?.json().access_token) })).statusCode).toBe(401)
  })

  it("a code is only for its client: another client's exchange fails", async () => {
    const user = await userWithToken(ctx.app)
    const app = await appClient(ctx.app, { firstParty: true })
    const thief = await appClient(ctx.app, { firstParty: true, redirectUris: [app.redirectUri] })
    const { verifier, challenge } = pkce()
    const { code } = await codeFor(user, app, {}, challenge)
    const stolen = await tokenRequest(ctx.app, { grant_type: 'authorization_code', code, redirect_uri: app.redirectUri, code_verifier: verifier, client_id: thief.clientId })
    expect(stolen.json().error).toBe('invalid_grant')
    expect((await exchange(app, code, verifier)).statusCode).toBe(200)
  })

  it('a code is only for its redirect URI, and a confidential client must authenticate to use one', async () => {
    const user = await userWithToken(ctx.app)
    const app = await appClient(ctx.app, { firstParty: true, isPublic: false, redirectUris: ['https://app.example.com/callback', 'https://app.example.com/other'] })
    const { verifier, challenge } = pkce()
    const { code } = await codeFor(user, app, {}, challenge)
    const unauthenticated = await exchange(app, code, verifier)
    expect(unauthenticated.statusCode).toBe(401)
    expect(unauthenticated.json().error).toBe('invalid_client')
    const basic = { authorization: `Basic ${Buffer.from(`${app.clientId}:${app.clientSecret ?? ''}`).toString('base64')}` }
    const elsewhere = await tokenRequest(ctx.app, { grant_type: 'authorization_code', code, redirect_uri: 'https://app.example.com/other', code_verifier: verifier }, basic)
    expect(elsewhere.json().error).toBe('invalid_grant')
    const right = await tokenRequest(ctx.app, { grant_type: 'authorization_code', code, redirect_uri: app.redirectUri, code_verifier: verifier }, basic)
    expect(right.statusCode).toBe(200)
  })

  it('a code lives 60 seconds', async () => {
    const user = await userWithToken(ctx.app)
    const app = await appClient(ctx.app, { firstParty: true })
    const { verifier, challenge } = pkce()
    const { code } = await codeFor(user, app, {}, challenge)
    await ctx.app.prisma.authorizationCode.updateMany({ where: { userId: user.id }, data: { expiresAt: new Date(Date.now() - 1) } })
    expect((await exchange(app, code, verifier)).json().error).toBe('invalid_grant')
  })

  it('a code whose account changed since the sign-in (password, deactivation) gets no session', async () => {
    const user = await userWithToken(ctx.app)
    const app = await appClient(ctx.app, { firstParty: true })
    const { verifier, challenge } = pkce()
    const { code } = await codeFor(user, app, {}, challenge)
    const change = await ctx.app.inject({
      method: 'PUT',
      url: '/users/me/password',
      headers: user.headers,
      payload: { current_password: PASSWORD, new_password: 'a fresh passphrase after it' }
    })
    expect(change.statusCode).toBe(204)
    expect((await exchange(app, code, verifier)).json().error).toBe('invalid_grant')
    expect(await ctx.app.prisma.session.count({ where: { userId: user.id, clientId: app.clientId } })).toBe(0)
  })

  it('codes and codes only are stored hashed', async () => {
    const user = await userWithToken(ctx.app)
    const app = await appClient(ctx.app, { firstParty: true })
    const { code } = await codeFor(user, app)
    const rows = await ctx.app.prisma.authorizationCode.findMany({ where: { userId: user.id } })
    expect(rows).toHaveLength(1)
    expect(JSON.stringify(rows)).not.toContain(code)
  })
})

describe('redirect URIs', () => {
  it('an unknown client or an unregistered redirect_uri gets an error page, never a redirect (open redirect attempts)', async () => {
    const app = await appClient(ctx.app)
    const browser = new TestBrowser(ctx.app)
    const challenge = pkce().challenge
    const attempts = [
      'https://evil.example.net/callback',
      'https://app.example.com.evil.example.net/callback',
      'https://app.example.com/callback/../evil',
      'https://app.example.com/callback/',
      'https://app.example.com/callback?next=https://evil.example.net',
      'https://app.example.com/Callback',
      'http://app.example.com/callback',
      'https://app.example.com:8443/callback',
      'https://user@app.example.com/callback',
      '//evil.example.net/callback',
      'javascript:alert(1)',
      ''
    ]
    for (const redirectUri of attempts) {
      expectErrorPage(await browser.get(authorizeUrl({ client_id: app.clientId, redirect_uri: redirectUri, code_challenge: challenge })))
    }
    for (const clientId of ['00000000-0000-0000-0000-000000000000', 'not-a-client', '']) {
      expectErrorPage(await browser.get(authorizeUrl({ client_id: clientId, redirect_uri: app.redirectUri, code_challenge: challenge })))
    }
    // Even a request broken in every other way is not redirected while the redirect URI is wrong.
    expectErrorPage(await browser.get(`/oauth/authorize?client_id=${app.clientId}&redirect_uri=https://evil.example.net/&response_type=token`))
  })

  it('registration refuses redirect URIs that are not safe to send codes to', async () => {
    const admin = await adminWithToken(ctx.app)
    for (const uri of ['http://app.example.com/cb', 'javascript:alert(1)', 'https://app.example.com/cb#x', 'https://u:p@app.example.com/cb', 'myapp:/cb', 'data:text/html,x', 'relative/path']) {
      const answer = await ctx.app.inject({
        method: 'POST',
        url: '/clients',
        headers: admin.headers,
        payload: { name: 'app', scopes: ['openid'], grant_types: ['authorization_code'], redirect_uris: [uri], public: true }
      })
      expect(answer.statusCode, uri).toBe(400)
      expect(answer.json().errors[0].field).toBe('redirect_uris.0')
    }
    for (const uri of ['https://app.example.com/cb', 'http://localhost:8080/cb', 'http://127.0.0.1/cb', 'com.example.app:/oauth2redirect']) {
      const answer = await ctx.app.inject({
        method: 'POST',
        url: '/clients',
        headers: admin.headers,
        payload: { name: 'app', scopes: ['openid'], grant_types: ['authorization_code'], redirect_uris: [uri], public: true }
      })
      expect(answer.statusCode, uri).toBe(201)
      expect(answer.json().client_secret).toBeUndefined()
    }
  })

  it('a repeated parameter is refused, and state comes back byte for byte', async () => {
    const app = await appClient(ctx.app)
    const browser = new TestBrowser(ctx.app)
    const challenge = pkce().challenge
    const twice = await browser.get(`${authorizeUrl({ client_id: app.clientId, redirect_uri: app.redirectUri, code_challenge: challenge })}&redirect_uri=${encodeURIComponent('https://evil.example.net/')}`)
    expect(twice.statusCode).toBe(400)
    expect(twice.headers.location).toBeUndefined()
    const state = 'a&b=c d+e/f?%g'
    const answer = await browser.get(authorizeUrl({ client_id: app.clientId, redirect_uri: app.redirectUri, code_challenge: challenge, state, response_type: 'token' }))
    expect(redirectParams(answer)).toMatchObject({ error: 'unsupported_response_type', state })
    // A state that is not printable ASCII is refused, and not sent back.
    const hostile = await browser.get(authorizeUrl({ client_id: app.clientId, redirect_uri: app.redirectUri, code_challenge: challenge, state: 'x\u0001y' }))
    expect(hostile.statusCode).toBe(303)
    expect(redirectParams(hostile)).toEqual({ error: 'invalid_request', error_description: expect.any(String), iss: 'http://localhost:3000' })
  })
})

describe('the sign-in and consent forms', () => {
  it('a form post without the CSRF token, or with another browser’s, signs nobody in', async () => {
    const user = await userWithToken(ctx.app)
    const app = await appClient(ctx.app)
    const browser = new TestBrowser(ctx.app)
    const page = await browser.get(authorizeUrl({ client_id: app.clientId, redirect_uri: app.redirectUri, code_challenge: pkce().challenge }))
    const fields = hiddenFields(page.body)
    const { _csrf: _token, ...withoutToken } = fields
    const noToken = await browser.post('/oauth/authorize', { ...withoutToken, email: user.email, password: PASSWORD })
    expect(noToken.statusCode).toBe(403)
    // A forged page: the attacker's own token, posted from the victim's browser (which has its own secret).
    const attacker = new TestBrowser(ctx.app)
    const attackerPage = await attacker.get(authorizeUrl({ client_id: app.clientId, redirect_uri: app.redirectUri, code_challenge: pkce().challenge }))
    const forged = await browser.post('/oauth/authorize', { ...fields, _csrf: hiddenFields(attackerPage.body)._csrf ?? '', email: user.email, password: PASSWORD })
    expect(forged.statusCode).toBe(403)
    expect(browser.cookies.has('bapi_signin')).toBe(false)
  })

  it('the pages cannot be framed and run no script', async () => {
    const app = await appClient(ctx.app)
    const page = await new TestBrowser(ctx.app).get(authorizeUrl({ client_id: app.clientId, redirect_uri: app.redirectUri, code_challenge: pkce().challenge }))
    expect(page.headers['content-security-policy']).toMatch(/default-src 'none'.*frame-ancestors 'none'/)
    expect(page.headers['x-frame-options']).toMatch(/DENY|SAMEORIGIN/)
    expect(page.body).not.toMatch(/<script|\son[a-z]+=/i)
  })

  it('consent given to one client is not consent to another', async () => {
    const user = await userWithToken(ctx.app)
    const first = await appClient(ctx.app)
    const second = await appClient(ctx.app)
    const { browser } = await codeFor(user, first)
    const again = await browser.get(authorizeUrl({ client_id: second.clientId, redirect_uri: second.redirectUri, scope: 'openid posts:write', code_challenge: pkce().challenge }))
    expect(again.statusCode).toBe(200)
    expect(again.body).toContain(`Allow ${second.name}?`)
    const denied = await browser.submit(again, '/oauth/authorize', { decision: 'deny' })
    expect(redirectParams(denied)).toMatchObject({ error: 'access_denied' })
  })

  it('a sign-in does not survive a password change or a deactivation: the form again', async () => {
    const admin = await adminWithToken(ctx.app)
    for (const change of ['password', 'deactivation'] as const) {
      const user = await userWithToken(ctx.app)
      const app = await appClient(ctx.app, { firstParty: true })
      const { browser } = await codeFor(user, app)
      const ask = () => browser.get(authorizeUrl({ client_id: app.clientId, redirect_uri: app.redirectUri, code_challenge: pkce().challenge }))
      expect((await ask()).statusCode).toBe(303)
      if (change === 'password') {
        await ctx.app.inject({ method: 'PUT', url: '/users/me/password', headers: user.headers, payload: { current_password: PASSWORD, new_password: 'changed behind the browser' } })
      } else {
        await ctx.app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: admin.headers, payload: { is_active: false } })
      }
      const after = await ask()
      expect(after.statusCode, change).toBe(200)
      expect(after.body).toContain('<label for="password">Password</label>')
    }
  })

  it('a browser sign-in hashing while the password changes gets no sign-in', async () => {
    const user = await userWithToken(ctx.app)
    const app = await appClient(ctx.app, { firstParty: true })
    const browser = new TestBrowser(ctx.app)
    const page = await browser.get(authorizeUrl({ client_id: app.clientId, redirect_uri: app.redirectUri, code_challenge: pkce().challenge }))
    const hold = holdNextVerification(ctx.app)
    const inFlight = browser.submit(page, '/oauth/authorize', { email: user.email, password: PASSWORD })
    await hold.arrived
    const change = await ctx.app.inject({
      method: 'PUT',
      url: '/users/me/password',
      headers: user.headers,
      payload: { current_password: PASSWORD, new_password: 'changed during the sign-in' }
    })
    expect(change.statusCode).toBe(204)
    hold.release()
    const answer = await inFlight
    expect(answer.statusCode).toBe(401)
    expect(answer.body).toContain('The email or password is incorrect.')
    expect(browser.cookies.has('bapi_signin')).toBe(false)
    expect(await ctx.app.prisma.browserSession.count({ where: { userId: user.id } })).toBe(0)
  })

  it('prompt=none without a sign-in, or without consent, is sent back instead of showing a page', async () => {
    const user = await userWithToken(ctx.app)
    const app = await appClient(ctx.app)
    const browser = new TestBrowser(ctx.app)
    const none = await browser.get(authorizeUrl({ client_id: app.clientId, redirect_uri: app.redirectUri, code_challenge: pkce().challenge, prompt: 'none', state: 'q' }))
    expect(redirectParams(none)).toMatchObject({ error: 'login_required', state: 'q' })
    const other = await appClient(ctx.app)
    const { browser: signedIn } = await codeFor(user, other)
    const noConsent = await signedIn.get(authorizeUrl({ client_id: app.clientId, redirect_uri: app.redirectUri, scope: 'openid', code_challenge: pkce().challenge, prompt: 'none' }))
    expect(redirectParams(noConsent)).toMatchObject({ error: 'consent_required' })
  })

  it('max_age: a sign-in older than asked is made again, and the ID token says when it was', async () => {
    const user = await userWithToken(ctx.app)
    const app = await appClient(ctx.app, { firstParty: true })
    const { browser } = await codeFor(user, app)
    await ctx.app.prisma.browserSession.updateMany({ where: { userId: user.id }, data: { authTime: new Date(Date.now() - 600_000) } })
    const ask = (maxAge: string) => browser.get(authorizeUrl({ client_id: app.clientId, redirect_uri: app.redirectUri, scope: 'openid', code_challenge: pkce().challenge, max_age: maxAge }))
    expect((await ask('3600')).statusCode).toBe(303)
    const again = await ask('60')
    expect(again.statusCode).toBe(200)
    expect(again.body).toContain('<label for="password">Password</label>')
    expect(hiddenFields(again.body).max_age).toBe('60')
    expect(redirectParams(await ask('soon'))).toMatchObject({ error: 'invalid_request' })
  })

  it('a scope beyond what the client registered is sent back as invalid_scope; beyond the role, it is left out', async () => {
    const user = await userWithToken(ctx.app)
    const app = await appClient(ctx.app, { firstParty: true, scopes: ['openid', 'posts:write', 'users:read'] })
    const browser = new TestBrowser(ctx.app)
    const beyondClient = await browser.get(authorizeUrl({ client_id: app.clientId, redirect_uri: app.redirectUri, scope: 'openid clients:manage', code_challenge: pkce().challenge }))
    expect(redirectParams(beyondClient)).toMatchObject({ error: 'invalid_scope' })
    const { verifier, challenge } = pkce()
    const { code } = await codeFor(user, app, { scope: 'openid users:read' }, challenge)
    const tokens = await exchange(app, code, verifier)
    expect(tokens.json().scope).toBe('openid')
  })

  it('a client not registered for the flow is sent back unauthorized_client; the password grant is for first-party clients', async () => {
    const user = await userWithToken(ctx.app)
    const service = await appClient(ctx.app, { grantTypes: ['authorization_code'], isPublic: false })
    await ctx.app.prisma.client.update({ where: { id: service.clientId }, data: { grantTypes: ['client_credentials'] } })
    const answer = await new TestBrowser(ctx.app).get(authorizeUrl({ client_id: service.clientId, redirect_uri: service.redirectUri, code_challenge: pkce().challenge }))
    expect(redirectParams(answer)).toMatchObject({ error: 'unauthorized_client' })
    const app = await appClient(ctx.app)
    const password = await tokenRequest(ctx.app, { grant_type: 'password', username: user.email, password: PASSWORD, client_id: app.clientId })
    expect(password.json().error).toBe('unauthorized_client')
  })
})

describe('signing out (end session)', () => {
  it('with the ID token of the signed-in user: signed out at once, back to the registered URI with state', async () => {
    const user = await userWithToken(ctx.app)
    const app = await appClient(ctx.app, { firstParty: true })
    const { verifier, challenge } = pkce()
    const { code, browser } = await codeFor(user, app, {}, challenge)
    const idToken = (await exchange(app, code, verifier)).json().id_token as string
    const out = await browser.get(`/oauth/logout?${new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: 'https://app.example.com/signed-out', state: 'bye' }).toString()}`)
    expect(out.statusCode).toBe(303)
    expect(out.headers.location).toBe('https://app.example.com/signed-out?state=bye')
    expect(browser.cookies.has('bapi_signin')).toBe(false)
    // Unregistered post-logout URIs are refused, never followed.
    const evil = await browser.get(`/oauth/logout?${new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: 'https://evil.example.net/' }).toString()}`)
    expect(evil.statusCode).toBe(400)
    expect(evil.headers.location).toBeUndefined()
  })

  it('without a hint it asks first (a forged link cannot sign anyone out), and the form with its token does', async () => {
    const user = await userWithToken(ctx.app)
    const app = await appClient(ctx.app, { firstParty: true })
    const { browser } = await codeFor(user, app)
    const ask = await browser.get('/oauth/logout')
    expect(ask.statusCode).toBe(200)
    expect(browser.cookies.has('bapi_signin')).toBe(true)
    const { _csrf: _token, ...withoutToken } = hiddenFields(ask.body)
    expect((await browser.post('/oauth/logout', withoutToken)).statusCode).toBe(403)
    const done = await browser.submit(ask, '/oauth/logout', {})
    expect(done.statusCode).toBe(200)
    expect(done.body).toContain('signed out')
    expect(browser.cookies.has('bapi_signin')).toBe(false)
    // The next authorization shows the form again.
    const page = await browser.get(authorizeUrl({ client_id: app.clientId, redirect_uri: app.redirectUri, code_challenge: pkce().challenge }))
    expect(page.statusCode).toBe(200)
  })
})
