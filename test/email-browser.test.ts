// A password reset as a person does it, in a real browser with JavaScript
// turned off: ask for a link on the reset page, open the link from the email
// the real SMTP server received, type the new password twice, submit, and log
// in with it. Headless Chromium (Debian's package) driven by playwright-core,
// as in docs-browser.test.ts; a screenshot of the form is kept in
// test/artifacts/. Without Chromium the test skips, except in CI, where it fails.
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { browserTestsRun, launchChromium } from './chromium.js'
import { buildApp, fileMailbox, signup, uniqueEmail } from './helper.js'
import { linkIn } from './mailbox.js'

const SCREENSHOT = path.resolve('test/artifacts/reset-password.png')
const NEW_PASSWORD = 'a passphrase typed in a browser'

describe.runIf(browserTestsRun('test/email-browser.test.ts'))('a password reset in a browser', () => {
  let app: FastifyInstance
  let browser: Browser
  let baseUrl: string

  beforeAll(async () => {
    app = await buildApp()
    baseUrl = await app.listen({ host: '127.0.0.1', port: 0 })
    browser = await launchChromium()
  })

  afterAll(async () => {
    await browser?.close()
    await app?.close()
  })

  it('asks for a link, opens it from the email, sets the new password without JavaScript, and logs in with it', async () => {
    const email = uniqueEmail('browser')
    await signup(app, { email })
    const mailbox = await fileMailbox()

    const context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 800, height: 900 } })
    const page = await context.newPage()
    const policyViolations: string[] = []
    page.on('console', (message) => {
      if (/Content.Security.Policy/i.test(message.text())) policyViolations.push(message.text())
    })
    const stylesheets: number[] = []
    page.on('response', (response) => {
      if (response.url().endsWith('/assets/pages.css')) stylesheets.push(response.status())
    })

    // 1. The reset page without a link asks for the email.
    await page.goto(`${baseUrl}/account/reset-password`)
    await page.getByLabel('Email address').fill(email)
    await page.getByRole('button', { name: 'Send the link' }).click()
    await expect.poll(() => page.getByRole('heading', { level: 1 }).innerText()).toBe('Check your email')

    // 2. The link in the email that arrived over SMTP (to this server's address: the app was
    // built before its port was known, so its links name PUBLIC_URL's).
    await expect.poll(() => mailbox.to(email).filter((message) => /Reset your/.test(message.subject)).length, { timeout: 15_000 }).toBe(1)
    const message = mailbox.to(email).find((candidate) => /Reset your/.test(candidate.subject))
    const link = linkIn(message!)
    expect(`${link.origin}${link.pathname}`).toBe('http://localhost:3000/account/reset-password')
    await page.goto(`${baseUrl}${link.pathname}${link.search}`)
    await expect.poll(() => page.getByRole('heading', { level: 1 }).innerText()).toBe('Choose a new password')

    // 3. The form, by its labels.
    await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD)
    await page.getByLabel('New password, again').fill(NEW_PASSWORD)
    await mkdir(path.dirname(SCREENSHOT), { recursive: true })
    await page.screenshot({ path: SCREENSHOT, fullPage: true })
    await page.getByRole('button', { name: 'Set the new password' }).click()
    await expect.poll(() => page.getByRole('heading', { level: 1 }).innerText()).toBe('Your password is changed')

    // 4. The new password logs in, as a client of the token endpoint does.
    const login = await fetch(`${baseUrl}/auth/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'password', username: email, password: NEW_PASSWORD })
    })
    expect(login.status).toBe(200)
    expect(((await login.json()) as { access_token?: string }).access_token).toBeTruthy()

    // The pages' stylesheet loaded under their policy (cached after the first); nothing was blocked.
    expect(stylesheets.length).toBeGreaterThanOrEqual(1)
    expect(stylesheets.every((status) => status === 200 || status === 304)).toBe(true)
    expect(policyViolations).toEqual([])
    await context.close()
  })
})
