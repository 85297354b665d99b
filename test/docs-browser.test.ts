// The docs page in a real browser: a person opens /docs, logs in with the
// Authorize button — with the OAuth2 password flow, or with the authorization
// code flow on the service's own sign-in page — and runs "Try it out" on
// GET /users/me. Headless Chromium (test/chromium.ts). Screenshots of the
// results are kept in test/artifacts/.
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { browserTestsRun, launchChromium } from './chromium.js'
import { freePort } from './ports.js'
import { buildApp, PASSWORD, signup, uniqueEmail } from './helper.js'

const SCREENSHOTS = path.resolve('test/artifacts')

/** Runs "Try it out" on GET /users/me and answers the response's status, once its body shows `email`. */
async function tryGetMe(page: Page, email: string, screenshot: string): Promise<string> {
  const operation = page.locator('#operations-Users-getMe')
  await operation.locator('.opblock-summary').click()
  await operation.locator('button.try-out__btn').click()
  await operation.locator('button.execute').click()
  const body = operation.locator('.live-responses-table .response-col_description pre')
  await body.first().waitFor({ timeout: 15_000 })
  await expect.poll(async () => body.first().innerText()).toContain(email)
  await mkdir(SCREENSHOTS, { recursive: true })
  await operation.screenshot({ path: path.join(SCREENSHOTS, screenshot) })
  return (await operation.locator('.live-responses-table .response .response-col_status').first().innerText()).trim()
}

describe.runIf(browserTestsRun('test/docs-browser.test.ts'))('the docs page in a browser', () => {
  let app: FastifyInstance
  let browser: Browser
  let baseUrl: string

  beforeAll(async () => {
    // A browser needs a real socket: `inject` serves only in-process requests. The
    // service must know its own address (PUBLIC_URL): the docs page's sign-in
    // redirects back to it.
    const port = await freePort()
    baseUrl = `http://127.0.0.1:${port}`
    app = await buildApp({ PUBLIC_URL: baseUrl })
    await app.listen({ host: '127.0.0.1', port })
    browser = await launchChromium()
  })

  afterAll(async () => {
    await browser?.close()
    await app?.close()
  })

  it('logs in with Authorize and shows the user from "Try it out" on GET /users/me', async () => {
    const email = uniqueEmail('docs')
    await signup(app, { email, full_name: 'Docs Reader', password: PASSWORD })

    const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } })
    const policyViolations: string[] = []
    page.on('console', (message) => {
      if (/Content.Security.Policy/i.test(message.text())) policyViolations.push(message.text())
    })
    const tokenResponses: number[] = []
    page.on('response', (response) => {
      if (response.url().endsWith('/auth/token')) tokenResponses.push(response.status())
    })

    await page.goto(`${baseUrl}/docs`)
    // The page is this service's: its own title, no "Explore" bar, no server list.
    expect(await page.title()).toBe('Blog API docs')
    await page.locator('.information-container .title').first().waitFor()
    expect(await page.locator('.information-container .title').first().innerText()).toContain('Blog API')
    expect(await page.locator('.topbar').count()).toBe(0)
    expect(await page.locator('.servers').count()).toBe(0)
    // A public route shows no lock; a protected one does.
    expect(await page.locator('#operations-Posts-listPosts .authorization__btn').count()).toBe(0)
    expect(await page.locator('#operations-Users-getMe .authorization__btn').count()).toBe(1)

    await page.locator('.auth-wrapper .btn.authorize').click()
    // The dialog shows one form per way of logging in; each is authorized on its own.
    const passwordFlow = page.locator('.auth-container').filter({ hasText: 'userPassword' })
    const clientFlow = page.locator('.auth-container').filter({ hasText: 'serviceClient' })
    await passwordFlow.locator('#oauth_username').fill(email)
    await passwordFlow.locator('#oauth_password').fill(PASSWORD)
    await passwordFlow.locator('button.authorize').click()
    // Once authorized, the form offers Logout instead of Authorize; the other form does not.
    await expect.poll(() => passwordFlow.locator('button', { hasText: 'Logout' }).count(), { timeout: 15_000 }).toBe(1)
    expect(await clientFlow.locator('button', { hasText: 'Logout' }).count()).toBe(0)
    expect(await clientFlow.locator('button.authorize').count()).toBe(1)
    await page.locator('.modal-ux button.close-modal').first().click()

    expect(await tryGetMe(page, email, 'docs-try-it-out.png')).toBe('200')
    expect(tokenResponses).toEqual([200])
    expect(policyViolations).toEqual([])
    await page.close()
  })

  it("signs in through Authorize on the service's own sign-in page (authorization code with PKCE), then calls GET /users/me", async () => {
    const email = uniqueEmail('docs-code')
    await signup(app, { email, full_name: 'Code Flow Reader', password: PASSWORD })
    const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } })
    const policyViolations: string[] = []
    const watch = (target: Page) =>
      target.on('console', (message) => {
        if (/Content.Security.Policy/i.test(message.text())) policyViolations.push(message.text())
      })
    watch(page)
    const tokenRequests: string[] = []
    page.on('request', (request) => {
      if (request.url().endsWith('/auth/token')) tokenRequests.push(request.postData() ?? '')
    })

    await page.goto(`${baseUrl}/docs`)
    await page.locator('.auth-wrapper .btn.authorize').click()
    const codeFlow = page.locator('.auth-container').filter({ hasText: 'browserSignIn' })
    await codeFlow.locator('#client_id_authorizationCode').fill('public')
    // Swagger UI opens the authorization endpoint in a window of its own.
    const [signIn] = await Promise.all([page.waitForEvent('popup'), codeFlow.locator('button.authorize').click()])
    watch(signIn)
    await signIn.waitForLoadState()
    expect(new URL(signIn.url()).pathname).toBe('/oauth/authorize')
    expect(new URL(signIn.url()).searchParams.get('code_challenge_method')).toBe('S256')
    await signIn.locator('#email').fill(email)
    await signIn.locator('#password').fill(PASSWORD)
    await mkdir(SCREENSHOTS, { recursive: true })
    await signIn.screenshot({ path: path.join(SCREENSHOTS, 'sign-in-page.png') })
    // The built-in client is first-party: no consent; the window returns the code to the docs page and closes.
    await Promise.all([signIn.waitForEvent('close', { timeout: 20_000 }), signIn.locator('button[type="submit"]').click()])
    await expect.poll(() => codeFlow.locator('button', { hasText: 'Logout' }).count(), { timeout: 15_000 }).toBe(1)
    await page.locator('.modal-ux button.close-modal').first().click()

    expect(await tryGetMe(page, email, 'docs-code-flow-try-it-out.png')).toBe('200')
    expect(tokenRequests).toHaveLength(1)
    expect(tokenRequests[0]).toContain('grant_type=authorization_code')
    expect(tokenRequests[0]).toContain('code_verifier=')
    expect(policyViolations).toEqual([])
    await page.close()
  })
})
