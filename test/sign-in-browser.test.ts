// The whole browser sign-in, in a real browser, from a tiny app of another
// origin: the app redirects to /oauth/authorize, the user signs in on the
// service's page, allows the app on the consent page, and comes back to the
// app with a code, which the app (server side) exchanges with its PKCE
// verifier and uses to read userinfo. Headless Chromium (test/chromium.ts).
import { createServer, type Server } from 'node:http'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { browserTestsRun, launchChromium } from './chromium.js'
import { freePort } from './ports.js'
import { appClient, buildApp, PASSWORD, signup, uniqueEmail } from './helper.js'
import { mfaUser, stepClock } from './mfa-helper.js'
import { pkce } from './oauth-browser.js'
import { codeAt } from './otp.js'

const SCREENSHOTS = path.resolve('test/artifacts')

/** A tiny app users sign in to: `/` starts a sign-in, `/callback` finishes it and greets the user. */
function tinyApp(service: string, clientId: () => string, redirectUri: string): Server {
  const pending = new Map<string, string>()
  return createServer((request, response) => {
    void (async () => {
      const url = new URL(request.url ?? '/', redirectUri)
      if (url.pathname === '/') {
        const { verifier, challenge } = pkce()
        const state = crypto.randomUUID()
        pending.set(state, verifier)
        const authorize = new URL('/oauth/authorize', service)
        for (const [name, value] of Object.entries({
          response_type: 'code',
          client_id: clientId(),
          redirect_uri: redirectUri,
          scope: 'openid profile email posts:write',
          state,
          code_challenge: challenge,
          code_challenge_method: 'S256'
        })) {
          authorize.searchParams.set(name, value)
        }
        response.writeHead(302, { location: authorize.toString() }).end()
        return
      }
      const state = url.searchParams.get('state') ?? ''
      const verifier = pending.get(state)
      pending.delete(state)
      if (!verifier || url.searchParams.get('iss') !== service) {
        response.writeHead(400).end('unexpected state or issuer')
        return
      }
      const tokens = (await (
        await fetch(`${service}/auth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            grant_type: 'authorization_code',
            code: url.searchParams.get('code') ?? '',
            redirect_uri: redirectUri,
            code_verifier: verifier,
            client_id: clientId()
          })
        })
      ).json()) as { access_token: string }
      const me = (await (await fetch(`${service}/oauth/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } })).json()) as {
        email: string
      }
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<h1 id="greeting">Signed in as ${me.email}</h1>`)
    })().catch((error: unknown) => response.writeHead(500).end(String(error)))
  })
}

describe.runIf(browserTestsRun('test/sign-in-browser.test.ts'))('signing in to an app in a browser', () => {
  let service: FastifyInstance
  let app: Server
  let browser: Browser
  let serviceUrl: string
  let appUrl: string
  let clientId = ''

  beforeAll(async () => {
    const [servicePort, appPort] = [await freePort(), await freePort()]
    serviceUrl = `http://127.0.0.1:${servicePort}`
    appUrl = `http://127.0.0.1:${appPort}`
    service = await buildApp({ PUBLIC_URL: serviceUrl })
    await service.listen({ host: '127.0.0.1', port: servicePort })
    clientId = (await appClient(service, { redirectUris: [`${appUrl}/callback`] })).clientId
    app = tinyApp(serviceUrl, () => clientId, `${appUrl}/callback`)
    await new Promise<void>((resolve) => app.listen(appPort, '127.0.0.1', resolve))
    browser = await launchChromium()
  })

  afterAll(async () => {
    await browser?.close()
    await new Promise((resolve) => app?.close(resolve))
    await service?.close()
  })

  it('goes from the app to the sign-in page, through consent, and back to the app signed in', async () => {
    const email = uniqueEmail('browser')
    await signup(service, { email, full_name: 'Browser User', password: PASSWORD })
    const page: Page = await browser.newPage()
    const policyViolations: string[] = []
    page.on('console', (message) => {
      if (/Content.Security.Policy|Refused/i.test(message.text())) policyViolations.push(message.text())
    })

    await page.goto(appUrl)
    expect(new URL(page.url()).origin).toBe(serviceUrl)
    expect(await page.locator('h1').innerText()).toBe('Sign in')
    await page.locator('#email').fill(email)
    await page.locator('#password').fill(PASSWORD)
    await page.locator('button[type="submit"]').click()

    await page.locator('ul.scopes').waitFor()
    expect(await page.locator('h1').innerText()).toMatch(/^Allow app-/)
    expect(await page.locator('ul.scopes').innerText()).toContain('Create, edit and delete your own posts.')
    await page.screenshot({ path: path.join(SCREENSHOTS, 'consent-page.png') })
    await page.locator('button[value="allow"]').click()

    await page.locator('#greeting').waitFor({ timeout: 15_000 })
    expect(page.url().startsWith(`${appUrl}/callback?code=bapi_ac_`)).toBe(true)
    expect(await page.locator('#greeting').innerText()).toBe(`Signed in as ${email}`)

    // Once more: signed in already and consented, the service sends the browser straight back.
    await page.goto(appUrl)
    await page.locator('#greeting').waitFor({ timeout: 15_000 })
    expect(await page.locator('#greeting').innerText()).toBe(`Signed in as ${email}`)
    expect(policyViolations).toEqual([])
    await page.close()
  })

  it('an account with MFA: the password, then the code the authenticator shows', async () => {
    const clock = stepClock(service)
    const user = await mfaUser(service, clock)
    const page: Page = await browser.newPage()
    await page.goto(appUrl)
    await page.locator('#email').fill(user.email)
    await page.locator('#password').fill(PASSWORD)
    await page.locator('button[type="submit"]').click()

    await page.locator('#code').waitFor()
    expect(await page.locator('h1').innerText()).toBe('Enter your code')
    expect(await page.locator('#code').getAttribute('autocomplete')).toBe('one-time-code')
    clock.step()
    await page.locator('#code').fill(codeAt(user.secret, clock.now))
    await page.locator('button[type="submit"]').click()

    await page.locator('ul.scopes').waitFor()
    await page.locator('button[value="allow"]').click()
    await page.locator('#greeting').waitFor({ timeout: 15_000 })
    expect(await page.locator('#greeting').innerText()).toBe(`Signed in as ${user.email}`)
    await page.close()
  })
})
