// A user's consents to apps: listed, and withdrawn. Withdrawing must take
// everything the app holds at once — its sessions and tokens, the codes it has
// not exchanged yet, and the right to sign the user in without asking —
// and touch nothing of other apps or other users.
import { describe, expect, it } from 'vitest'
import { adminWithToken, appClient, basicAuth, bearer, clientAddress, PASSWORD, serviceClient, tokenRequest, useApp, userWithToken } from './helper.js'
import { pkce, redirectParams, TestBrowser } from './oauth-browser.js'

const ctx = useApp()

type App = Awaited<ReturnType<typeof appClient>>

const authorizeUrl = (app: App, challenge: string) =>
  `/oauth/authorize?${new URLSearchParams({ response_type: 'code', code_challenge_method: 'S256', client_id: app.clientId, redirect_uri: app.redirectUri, scope: 'openid posts:write', code_challenge: challenge }).toString()}`

/** Signs `user` in to `app` in `browser`, consenting; answers the tokens. */
async function signInTo(browser: TestBrowser, user: { email: string }, app: App) {
  const { verifier, challenge } = pkce()
  const page = await browser.get(authorizeUrl(app, challenge))
  let answer = page.statusCode === 200 && page.body.includes('name="password"') ? await browser.submit(page, '/oauth/authorize', { email: user.email, password: PASSWORD }) : page
  if (answer.statusCode === 200) answer = await browser.submit(answer, '/oauth/authorize', { decision: 'allow' })
  expect(answer.statusCode, answer.body).toBe(303)
  const exchanged = await tokenRequest(ctx.app, { grant_type: 'authorization_code', code: redirectParams(answer).code ?? '', redirect_uri: app.redirectUri, code_verifier: verifier, client_id: app.clientId })
  expect(exchanged.statusCode, exchanged.body).toBe(200)
  return exchanged.json<{ access_token: string; refresh_token: string }>()
}

const consents = (token: string) => ctx.app.inject({ method: 'GET', url: '/users/me/consents', headers: bearer(token) })
const withdraw = (token: string, clientId: string) =>
  ctx.app.inject({ method: 'DELETE', url: `/users/me/consents/${clientId}`, headers: bearer(token), remoteAddress: clientAddress() })

describe('consents', () => {
  it('are listed, and withdrawing one ends what that app holds, and only that', async () => {
    const user = await userWithToken(ctx.app)
    const other = await userWithToken(ctx.app)
    const [app, another] = [await appClient(ctx.app), await appClient(ctx.app)]
    const browser = new TestBrowser(ctx.app)
    const held = await signInTo(browser, user, app)
    const kept = await signInTo(browser, user, another)
    const othersTokens = await signInTo(new TestBrowser(ctx.app), other, app)

    const listed = await consents(user.tokens.access_token)
    expect(listed.statusCode).toBe(200)
    expect(listed.headers['cache-control']).toBe('no-store')
    expect(listed.json()).toEqual(
      expect.arrayContaining([
        { client_id: app.clientId, client_name: app.name, scopes: ['openid', 'posts:write'], granted_at: expect.any(String), updated_at: expect.any(String) },
        expect.objectContaining({ client_id: another.clientId })
      ])
    )
    expect(listed.json()).toHaveLength(2)

    // A code the app got but has not exchanged yet.
    const { verifier, challenge } = pkce()
    const pending = await browser.get(authorizeUrl(app, challenge))
    expect(pending.statusCode).toBe(303)

    expect((await withdraw(user.tokens.access_token, app.clientId)).statusCode).toBe(204)

    expect((await ctx.app.inject({ method: 'GET', url: '/users/me', headers: bearer(held.access_token) })).statusCode).toBe(401)
    expect((await tokenRequest(ctx.app, { grant_type: 'refresh_token', refresh_token: held.refresh_token, client_id: app.clientId })).statusCode).toBe(400)
    const late = await tokenRequest(ctx.app, { grant_type: 'authorization_code', code: redirectParams(pending).code ?? '', redirect_uri: app.redirectUri, code_verifier: verifier, client_id: app.clientId })
    expect(late.json()).toMatchObject({ error: 'invalid_grant' })
    // Signed in to the service still, the browser is asked for consent again.
    const again = await browser.get(authorizeUrl(app, pkce().challenge))
    expect(again.statusCode).toBe(200)
    expect(again.body).toContain(`Allow ${app.name}?`)

    // The other app, the user's own token and the other user keep theirs.
    expect((await ctx.app.inject({ method: 'GET', url: '/users/me', headers: bearer(kept.access_token) })).statusCode).toBe(200)
    expect((await ctx.app.inject({ method: 'GET', url: '/users/me', headers: bearer(othersTokens.access_token) })).statusCode).toBe(200)
    expect((await consents(user.tokens.access_token)).json()).toEqual([expect.objectContaining({ client_id: another.clientId })])

    const audit = await ctx.app.inject({ method: 'GET', url: `/audit-events?kind=consent.withdrawn&user_id=${user.id}`, headers: (await adminWithToken(ctx.app)).headers })
    expect(audit.json<{ data: Array<{ details: unknown }> }>().data).toEqual([expect.objectContaining({ details: { target_client_id: app.clientId } })])
  })

  it('withdrawing twice, or a consent never given, is a 404; hostile ids a 400; service clients have none', async () => {
    const user = await userWithToken(ctx.app)
    const app = await appClient(ctx.app)
    expect((await withdraw(user.tokens.access_token, app.clientId)).statusCode).toBe(404)
    for (const id of ['public', `urn:uuid:${app.clientId}`, `${app.clientId}\u0000`, app.clientId.toUpperCase().replace(/-/g, '')]) {
      expect((await withdraw(user.tokens.access_token, encodeURIComponent(id))).statusCode, id).toBe(400)
    }
    const service = await serviceClient(ctx.app, [])
    const token = (await tokenRequest(ctx.app, { grant_type: 'client_credentials' }, { authorization: basicAuth(service.clientId, service.clientSecret ?? '') })).json<{ access_token: string }>()
    expect((await consents(token.access_token)).statusCode).toBe(403)
    expect((await ctx.app.inject({ method: 'GET', url: '/users/me/consents' })).statusCode).toBe(401)
  })
})
