// The docs page in a real browser: a person opens /docs, logs in with the
// Authorize button (OAuth2 password flow) and runs "Try it out" on
// GET /users/me. Headless Chromium (Debian's package, installed by .ci/run)
// driven by playwright-core. A screenshot of the result is kept in
// test/artifacts/. Without Chromium the test skips, saying so, except in CI,
// where a skipped browser test would hide a broken docs page: there it fails.
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import { type Browser, chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp, PASSWORD, signup, uniqueEmail } from './helper.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
// Without the networking flags Chromium keeps dialling hosts it cannot reach.
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync'
]
const SCREENSHOT = path.resolve('test/artifacts/docs-try-it-out.png')

const hasBrowser = existsSync(CHROMIUM)
const inCi = Boolean(process.env.CI)

if (!hasBrowser && !inCi) {
  console.warn(
    `\n  SKIPPED test/docs-browser.test.ts: no Chromium at ${CHROMIUM}. ` +
      'Install it (apt-get install -y chromium) or set CHROMIUM_PATH to run the docs page in a browser.\n'
  )
}

describe.runIf(hasBrowser || inCi)('the docs page in a browser', () => {
  let app: FastifyInstance
  let browser: Browser
  let baseUrl: string

  beforeAll(async () => {
    if (!hasBrowser) throw new Error(`CI needs Chromium at ${CHROMIUM} for the docs browser test (.ci/run installs it)`)
    app = await buildApp()
    // A browser needs a real socket: `inject` serves only in-process requests.
    // Port 0 lets the system pick a free one, so parallel test files never clash.
    baseUrl = await app.listen({ host: '127.0.0.1', port: 0 })
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS, headless: true })
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

    const operation = page.locator('#operations-Users-getMe')
    await operation.locator('.opblock-summary').click()
    await operation.locator('button.try-out__btn').click()
    await operation.locator('button.execute').click()

    const body = operation.locator('.live-responses-table .response-col_description pre')
    await body.first().waitFor({ timeout: 15_000 })
    await expect.poll(async () => body.first().innerText()).toContain(email)
    const status = await operation.locator('.live-responses-table .response .response-col_status').first().innerText()
    expect(status.trim()).toBe('200')

    await mkdir(path.dirname(SCREENSHOT), { recursive: true })
    await operation.screenshot({ path: SCREENSHOT })

    expect(tokenResponses).toEqual([200])
    expect(policyViolations).toEqual([])
    await page.close()
  })
})
