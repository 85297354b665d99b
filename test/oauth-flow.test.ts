// Browser sign-in with OAuth 2.1 and OpenID Connect, as an app's users go
// through it: the app sends the browser to /oauth/authorize, the user signs in
// on the service's own page (and consents, for apps that are not first-party),
// the browser comes back to the app with a code, and the app exchanges it
// (with its PKCE verifier) for tokens. Driven by hand, step by step, and then
// by a certified relying party library, openid-client, which validates
// discovery, the ID token, userinfo, refresh and introspection itself.
import type { FastifyInstance } from 'fastify'
import * as client from 'openid-client'
import { describe, expect, it } from 'vitest'
import { appClient, bearer, clientAddress, decodeJwt, fileMailbox, PASSWORD, tokenRequest, useApp, userWithToken } from './helper.js'
import { tokenIn } from './mailbox.js'
import { pkce, redirectParams, TestBrowser } from './oauth-browser.js'

const ctx = useApp()
const ISSUER = 'http://localhost:3000'

function authorizeUrl(params: Record<string, string>) {
  return `/oauth/authorize?${new URLSearchParams({ response_type: 'code', code_challenge_method: 'S256', ...params }).toString()}`
}

describe('the authorization code flow, step by step', () => {
  it('signs a user in for an app: sign-in page, consent, code, tokens and an ID token', async () => {
    const user = await userWithToken(ctx.app, { full_name: 'Ada Lovelace' })
    const app = await appClient(ctx.app)
    const { verifier, challenge } = pkce()
    const browser = new TestBrowser(ctx.app)

    const signInPage = await browser.get(
      authorizeUrl({ client_id: app.clientId, redirect_uri: app.redirectUri, scope: 'openid profile email posts:write', state: 'xyz', code_challenge: challenge, nonce: 'n-0S6' })
    )
    expect(signInPage.statusCode).toBe(200)
    expect(signInPage.headers['content-type']).toContain('text/html')
    expect(signInPage.headers['content-security-policy']).toContain("frame-ancestors 'none'")
    expect(signInPage.headers['cache-control']).toBe('no-store')
    expect(signInPage.body).toContain('<label for="email">Email</label>')
    expect(signInPage.body).toContain('href="/account/reset-password"')
    expect(signInPage.body).toContain('/account/signup?return_to=')
    expect(signInPage.body).not.toContain('<script')

    const consentPage = await browser.submit(signInPage, '/oauth/authorize', { email: user.email, password: PASSWORD })
    expect(consentPage.statusCode, consentPage.body).toBe(200)
    expect(consentPage.body).toContain(`Allow ${app.name}?`)
    expect(consentPage.body).toContain('<code>posts:write</code>')
    expect(browser.cookies.has('bapi_signin')).toBe(true)

    const back = await browser.submit(consentPage, '/oauth/authorize', { decision: 'allow' })
    expect(back.statusCode).toBe(303)
    const { code, state, iss } = redirectParams(back)
    expect(String(back.headers.location)).toMatch(/^https:\/\/app\.example\.com\/callback\?code=bapi_ac_/)
    expect(state).toBe('xyz')
    expect(iss).toBe(ISSUER)

    const exchange = await tokenRequest(ctx.app, {
      grant_type: 'authorization_code',
      code: code ?? '',
      redirect_uri: app.redirectUri,
      code_verifier: verifier,
      client_id: app.clientId
    })
    expect(exchange.statusCode, exchange.body).toBe(200)
    expect(exchange.headers['cache-control']).toBe('no-store')
    const tokens = exchange.json()
    expect(tokens).toMatchObject({ token_type: 'bearer', scope: 'posts:write openid profile email', refresh_token: expect.stringMatching(/^bapi_rt_/) })
    const idToken = decodeJwt(tokens.id_token)
    expect(idToken.header).toMatchObject({ typ: 'JWT', alg: 'EdDSA', kid: expect.any(String) })
    expect(idToken.claims).toMatchObject({
      iss: ISSUER,
      sub: user.id,
      aud: app.clientId,
      nonce: 'n-0S6',
      amr: ['pwd'],
      name: 'Ada Lovelace',
      email: user.email,
      auth_time: expect.any(Number)
    })
    // The access token works at the API and is bound to the app.
    expect(decodeJwt(tokens.access_token).claims.client_id).toBe(app.clientId)
    expect((await ctx.app.inject({ method: 'GET', url: '/users/me', headers: bearer(tokens.access_token) })).statusCode).toBe(200)
    // The app refreshes as itself.
    const refreshed = await tokenRequest(ctx.app, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: app.clientId })
    expect(refreshed.statusCode).toBe(200)
  })

  it('remembers consent per user and client, and a signed-in browser skips the form', async () => {
    const user = await userWithToken(ctx.app)
    const app = await appClient(ctx.app)
    const browser = new TestBrowser(ctx.app)
    const ask = (scope: string) => browser.get(authorizeUrl({ client_id: app.clientId, redirect_uri: app.redirectUri, scope, code_challenge: pkce().challenge }))
    const signIn = await ask('openid posts:write')
    const consent = await browser.submit(signIn, '/oauth/authorize', { email: user.email, password: PASSWORD })
    expect((await browser.submit(consent, '/oauth/authorize', { decision: 'allow' })).statusCode).toBe(303)
    // Again, for no more than was allowed: straight back with a code.
    const again = await ask('openid')
    expect(again.statusCode).toBe(303)
    expect(redirectParams(again).code).toMatch(/^bapi_ac_/)
    // Asking for more: the consent page again.
    expect((await ask('openid email')).body).toContain('<code>email</code>')
  })

  it('a first-party app is not asked about, and the docs page’s built-in client works too', async () => {
    const user = await userWithToken(ctx.app)
    const firstParty = await appClient(ctx.app, { firstParty: true })
    const browser = new TestBrowser(ctx.app)
    const signIn = await browser.get(authorizeUrl({ client_id: firstParty.clientId, redirect_uri: firstParty.redirectUri, scope: 'posts:write', code_challenge: pkce().challenge }))
    const back = await browser.submit(signIn, '/oauth/authorize', { email: user.email, password: PASSWORD })
    expect(back.statusCode).toBe(303)
    expect(redirectParams(back).code).toMatch(/^bapi_ac_/)
    const docs = await browser.get(
      authorizeUrl({ client_id: 'public', redirect_uri: 'http://localhost:3000/docs/static/oauth2-redirect.html', scope: 'posts:write', code_challenge: pkce().challenge })
    )
    expect(docs.statusCode).toBe(303)
  })

  it('an empty scope asks for what the app registered (without identity scopes), within the account’s role', async () => {
    const user = await userWithToken(ctx.app)
    const app = await appClient(ctx.app, { firstParty: true, scopes: ['openid', 'posts:write', 'users:read'] })
    const { verifier, challenge } = pkce()
    const browser = new TestBrowser(ctx.app)
    const signIn = await browser.get(authorizeUrl({ client_id: app.clientId, redirect_uri: app.redirectUri, code_challenge: challenge }))
    const back = await browser.submit(signIn, '/oauth/authorize', { email: user.email, password: PASSWORD })
    const tokens = await tokenRequest(ctx.app, { grant_type: 'authorization_code', code: redirectParams(back).code ?? '', redirect_uri: app.redirectUri, code_verifier: verifier, client_id: app.clientId })
    expect(tokens.json().scope).toBe('posts:write')
    expect(tokens.json().id_token).toBeUndefined()
  })

  it('a wrong password gets the sign-in page again with the generic message, and counts towards the lockout', async () => {
    const user = await userWithToken(ctx.app)
    const app = await appClient(ctx.app)
    const browser = new TestBrowser(ctx.app)
    const page = await browser.get(authorizeUrl({ client_id: app.clientId, redirect_uri: app.redirectUri, scope: 'openid', code_challenge: pkce().challenge }))
    let answer = page
    for (let i = 0; i < 5; i++) {
      answer = await browser.submit(answer, '/oauth/authorize', { email: user.email, password: 'not the password at all' })
      expect(answer.statusCode).toBe(401)
      expect(answer.body).toContain('The email or password is incorrect.')
      expect(answer.body).toContain(`value="${user.email}"`)
    }
    const locked = await browser.submit(answer, '/oauth/authorize', { email: user.email, password: PASSWORD })
    expect(locked.statusCode).toBe(429)
    expect(locked.headers['retry-after']).toBe('30')
    expect(locked.headers['content-type']).toContain('text/html')
    // Unknown emails get the very same page.
    const other = new TestBrowser(ctx.app)
    const unknown = await other.submit(await other.get(authorizeUrl({ client_id: app.clientId, redirect_uri: app.redirectUri, code_challenge: pkce().challenge })), '/oauth/authorize', {
      email: 'nobody-at-all@example.com',
      password: 'not the password at all'
    })
    expect(unknown.statusCode).toBe(401)
    expect(unknown.body).toContain('The email or password is incorrect.')
  })
})

/** openid-client's fetch, answered by the app through `inject`: the library talks HTTP to the real routes, no port needed. */
function injectFetch(app: FastifyInstance): client.CustomFetch {
  return async (url, options) => {
    const target = new URL(url)
    // The library sends forms (URLSearchParams) or nothing.
    const body = options.body instanceof URLSearchParams ? options.body.toString() : typeof options.body === 'string' ? options.body : undefined
    const response = await app.inject({
      method: options.method as 'GET',
      url: target.pathname + target.search,
      headers: Object.fromEntries(new Headers(options.headers as ConstructorParameters<typeof Headers>[0])),
      ...(body === undefined ? {} : { payload: body }),
      remoteAddress: clientAddress()
    })
    const headers = new Headers()
    for (const [name, value] of Object.entries(response.headers)) {
      if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : String(value))
    }
    return new Response(response.statusCode === 204 ? null : response.rawPayload, { status: response.statusCode, headers })
  }
}

describe('with a certified relying party (openid-client)', () => {
  async function configure(app: { clientId: string; clientSecret?: string }) {
    const auth = app.clientSecret ? client.ClientSecretBasic(app.clientSecret) : client.None()
    return client.discovery(new URL(ISSUER), app.clientId, { id_token_signed_response_alg: 'EdDSA' }, auth, {
      [client.customFetch]: injectFetch(ctx.app),
      execute: [client.allowInsecureRequests]
    })
  }

  it('discovers the provider, signs in with PKCE and a nonce, validates the ID token, reads userinfo, refreshes', async () => {
    const user = await userWithToken(ctx.app, { full_name: 'Grace Hopper' })
    const app = await appClient(ctx.app, { firstParty: true })
    const config = await configure(app)
    expect(config.serverMetadata()).toMatchObject({ issuer: ISSUER, code_challenge_methods_supported: ['S256'] })

    const verifier = client.randomPKCECodeVerifier()
    const nonce = client.randomNonce()
    const state = client.randomState()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: app.redirectUri,
      scope: 'openid profile email',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      nonce,
      state
    })
    const browser = new TestBrowser(ctx.app)
    const signIn = await browser.get(url.pathname + url.search)
    const back = await browser.submit(signIn, '/oauth/authorize', { email: user.email, password: PASSWORD })
    expect(back.statusCode).toBe(303)

    const tokens = await client.authorizationCodeGrant(config, new URL(String(back.headers.location)), {
      pkceCodeVerifier: verifier,
      expectedNonce: nonce,
      expectedState: state,
      idTokenExpected: true
    })
    const claims = tokens.claims()
    expect(claims).toMatchObject({ sub: user.id, iss: ISSUER, aud: app.clientId, nonce, name: 'Grace Hopper', email: user.email })

    const info = await client.fetchUserInfo(config, tokens.access_token, user.id)
    expect(info).toEqual({ sub: user.id, name: 'Grace Hopper', email: user.email, email_verified: false })
    // The claim is the account's as it is now: once the emailed link is used, the same token says verified.
    const [welcome] = await (await fileMailbox()).waitFor(user.email)
    const verified = await ctx.app.inject({ method: 'POST', url: '/auth/email/verify', payload: { token: tokenIn(welcome!) }, remoteAddress: clientAddress() })
    expect(verified.statusCode).toBe(204)
    expect(await client.fetchUserInfo(config, tokens.access_token, user.id)).toMatchObject({ email_verified: true })

    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token ?? '')
    expect(refreshed.access_token).not.toBe(tokens.access_token)
    expect(refreshed.scope).toBe('openid profile email')
  })

  it('a confidential app and a resource server use introspection; revoked and foreign tokens are inactive', async () => {
    const user = await userWithToken(ctx.app)
    const app = await appClient(ctx.app, { firstParty: true, isPublic: false })
    const config = await configure(app)
    const verifier = client.randomPKCECodeVerifier()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: app.redirectUri,
      scope: 'posts:write',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256'
    })
    const browser = new TestBrowser(ctx.app)
    const back = await browser.submit(await browser.get(url.pathname + url.search), '/oauth/authorize', { email: user.email, password: PASSWORD })
    const tokens = await client.authorizationCodeGrant(config, new URL(String(back.headers.location)), { pkceCodeVerifier: verifier })

    const access = await client.tokenIntrospection(config, tokens.access_token)
    expect(access).toMatchObject({ active: true, sub: user.id, client_id: app.clientId, scope: 'posts:write', token_type: 'Bearer' })
    const refresh = await client.tokenIntrospection(config, tokens.refresh_token ?? '')
    expect(refresh).toMatchObject({ active: true, token_type: 'refresh_token', client_id: app.clientId })
    // Another client learns nothing of this app's refresh token; everyone learns of a revoked access token.
    const other = await configure(await appClient(ctx.app, { firstParty: true, isPublic: false }))
    expect(await client.tokenIntrospection(other, tokens.refresh_token ?? '')).toEqual({ active: false })
    expect((await client.tokenIntrospection(other, tokens.access_token)).active).toBe(true)
    await client.tokenRevocation(config, tokens.refresh_token ?? '')
    expect(await client.tokenIntrospection(config, tokens.access_token)).toEqual({ active: false })
    expect(await client.tokenIntrospection(config, 'garbage')).toEqual({ active: false })
    // A public client may not introspect.
    const introspectAsPublic = await ctx.app.inject({ method: 'POST', url: '/oauth/introspect', payload: { token: tokens.access_token, client_id: 'public' } })
    expect(introspectAsPublic.statusCode).toBe(401)
  })
})

describe('discovery', () => {
  it('describes exactly what is supported, the same in both documents', async () => {
    const oidc = (await ctx.app.inject({ method: 'GET', url: '/.well-known/openid-configuration' })).json()
    const oauth = (await ctx.app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json()
    expect(oauth).toEqual(oidc)
    expect(oidc).toMatchObject({
      issuer: ISSUER,
      authorization_endpoint: `${ISSUER}/oauth/authorize`,
      token_endpoint: `${ISSUER}/auth/token`,
      jwks_uri: `${ISSUER}/.well-known/jwks.json`,
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      id_token_signing_alg_values_supported: ['EdDSA'],
      authorization_response_iss_parameter_supported: true
    })
    expect(oidc.grant_types_supported).toEqual(['authorization_code', 'refresh_token', 'client_credentials', 'password', 'urn:blog-api:grant-type:mfa-otp'])
  })
})
