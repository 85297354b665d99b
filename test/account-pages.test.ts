// The pages the links in emails open (src/routes/account-pages.ts on the pages
// plugin, src/plugins/app/pages.ts): HTML that works without JavaScript, under
// a Content-Security-Policy that allows no script at all, with a label for
// every field, forms posted form-encoded to the same flows as the JSON routes,
// and errors shown as pages too. Opening a link spends nothing.
import type { LightMyRequestResponse } from 'fastify'
import { describe, expect, it } from 'vitest'
import { PAGE_CSP, PAGE_STYLESHEET } from '../src/plugins/app/pages.js'
import { clientAddress, fileMailbox, login, PASSWORD, signup, uniqueEmail, useApp, userWithToken } from './helper.js'
import { tokenIn } from './mailbox.js'

const ctx = useApp()
const NEW_PASSWORD = 'the passphrase typed into the page'

const page = (url: string, remoteAddress = clientAddress()) => ctx.app.inject({ method: 'GET', url, remoteAddress })
const submit = (url: string, fields: Record<string, string>, remoteAddress = clientAddress()) =>
  ctx.app.inject({
    method: 'POST',
    url,
    remoteAddress,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams(fields).toString()
  })

async function resetLink(email: string) {
  const mailbox = await fileMailbox()
  const count = mailbox.to(email).filter((message) => /Reset your/.test(message.subject)).length
  await submit('/account/forgot-password', { email })
  await expect.poll(() => mailbox.to(email).filter((message) => /Reset your/.test(message.subject)).length, { timeout: 15_000 }).toBe(count + 1)
  const message = mailbox.to(email).filter((candidate) => /Reset your/.test(candidate.subject)).at(-1)
  return tokenIn(message!)
}

async function verificationToken(email: string, subject = /Confirm your email/) {
  const [message] = (await (await fileMailbox()).waitFor(email)).filter((candidate) => subject.test(candidate.subject))
  return tokenIn(message!)
}

/** What every page must be: HTML, no script, its policy and headers, a label for each field. */
function expectPage(response: LightMyRequestResponse, status: number) {
  expect(response.statusCode).toBe(status)
  expect(response.headers['content-type']).toBe('text/html; charset=utf-8')
  expect(response.headers['content-security-policy']).toBe(PAGE_CSP)
  expect(PAGE_CSP).not.toMatch(/unsafe|script-src/)
  expect(response.headers['cache-control']).toBe('no-store')
  expect(response.headers['x-frame-options']).toBe('SAMEORIGIN')
  expect(response.headers['referrer-policy']).toBe('no-referrer')
  const html = response.body
  expect(html).toMatch(/^<!doctype html>/)
  expect(html).not.toMatch(/<script|\son\w+=|style=/i)
  expect(html).toContain(`<link rel="stylesheet" href="${PAGE_STYLESHEET}">`)
  const inputs = [...html.matchAll(/<input ([^>]*)>/g)].map((match) => match[1] ?? '')
  for (const input of inputs.filter((attributes) => !attributes.includes('type="hidden"'))) {
    const id = /id="([^"]+)"/.exec(input)?.[1]
    expect(id, input).toBeDefined()
    expect(html).toContain(`<label for="${id}">`)
  }
  return html
}

describe('the reset page', () => {
  it('shows the form for a usable link, and opening it spends nothing', async () => {
    const user = await signup(ctx.app)
    const token = await resetLink(user.email)
    for (let i = 0; i < 2; i++) {
      const html = expectPage(await page(`/account/reset-password?token=${token}&utm_source=mail`), 200)
      expect(html).toContain(`<input type="hidden" name="token" value="${token}">`)
      expect(html).toContain('<form method="post" action="/account/reset-password">')
      expect(html).toMatch(/<input id="new_password" name="new_password" type="password" autocomplete="new-password" required minlength="12"/)
    }
    const done = await submit('/account/reset-password', { token, new_password: NEW_PASSWORD, new_password_again: NEW_PASSWORD })
    expect(expectPage(done, 200)).toContain('Your password is changed')
    expect((await login(ctx.app, user.email, NEW_PASSWORD)).access_token).toBeDefined()
    // The device that reset the password is trusted by the lockout from now on.
    expect(done.cookies.some((cookie) => cookie.name.startsWith('bapi_device_'))).toBe(true)
    // Used: the link and its form now say so, in the same words as for any other unusable link.
    for (const response of [
      await page(`/account/reset-password?token=${token}`),
      await submit('/account/reset-password', { token, new_password: NEW_PASSWORD, new_password_again: NEW_PASSWORD })
    ]) {
      expect(expectPage(response, 400)).toContain('This link is invalid, expired or already used.')
    }
  })

  it('gives the form back, with why, for passwords that differ or are refused', async () => {
    const user = await signup(ctx.app)
    const token = await resetLink(user.email)
    const differ = await submit('/account/reset-password', { token, new_password: NEW_PASSWORD, new_password_again: `${NEW_PASSWORD}!` })
    expect(expectPage(differ, 400)).toContain('The two passwords differ.')
    const weak = await submit('/account/reset-password', { token, new_password: 'short', new_password_again: 'short' })
    expect(expectPage(weak, 400)).toContain('The password must be at least 12 characters.')
    const empty = await submit('/account/reset-password', { token, new_password: '', new_password_again: '' })
    expect(expectPage(empty, 400)).toContain('The new password was not set')
    // None of these spent the link.
    const done = await submit('/account/reset-password', { token, new_password: NEW_PASSWORD, new_password_again: NEW_PASSWORD })
    expect(done.statusCode).toBe(200)
  })

  it('escapes what it shows: a hostile token comes back as text', async () => {
    const hostile = '"><script>alert(1)</script><input value="'
    const differ = await submit('/account/reset-password', { token: hostile, new_password: 'one passphrase here', new_password_again: 'another passphrase' })
    const html = expectPage(differ, 400)
    expect(html).toContain('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;input value=&quot;"')
  })

  it('without a link, asks for an email and sends one, with the same answer whatever the address', async () => {
    const form = expectPage(await page('/account/reset-password'), 200)
    expect(form).toContain('<label for="email">Email address</label>')
    expect(form).toContain('<form method="post" action="/account/forgot-password">')
    const user = await signup(ctx.app)
    const known = await submit('/account/forgot-password', { email: ` ${user.email.toUpperCase()} ` })
    const unknown = await submit('/account/forgot-password', { email: uniqueEmail('nobody') })
    expect(expectPage(known, 200)).toContain('Check your email')
    expect(unknown.body).toBe(known.body)
    await (await fileMailbox()).waitFor(user.email, 2)
    const invalid = await submit('/account/forgot-password', { email: 'not an address' })
    expect(expectPage(invalid, 400)).toContain('Enter an email address.')
  })

  it('answers malformed requests with an error page, not a stack or a JSON body', async () => {
    const cases = [
      await page('/account/reset-password?token=%00'),
      await page(`/account/reset-password?token=${'a'.repeat(201)}`),
      await page('/account/reset-password?token=bapi_pr_nope'),
      await submit('/account/reset-password', { token: 'x', new_password: NEW_PASSWORD }),
      await submit('/account/reset-password', { token: 'x', new_password: NEW_PASSWORD, new_password_again: NEW_PASSWORD, extra: 'x' }),
      await submit('/account/verify-email', {}),
      await ctx.app.inject({
        method: 'POST',
        url: '/account/reset-password',
        remoteAddress: clientAddress(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'token=%FF'
      })
    ]
    for (const response of cases) {
      const html = expectPage(response, 400)
      expect(html).not.toMatch(/node_modules|\.ts:\d/)
    }
    expect(cases[3]?.body).toContain('new_password_again')
  })

  it('is rate limited per address like the JSON routes, with a page that says so', async () => {
    const address = clientAddress()
    for (let i = 0; i < 20; i++) expect((await page('/account/reset-password', address)).statusCode).toBe(200)
    const limited = await page('/account/reset-password', address)
    expect(expectPage(limited, 429)).toContain('Too many attempts')
    expect(limited.headers['retry-after']).toMatch(/^\d+$/)
  })
})

describe('the verification page', () => {
  it('confirms the email with a button; opening the link alone changes nothing', async () => {
    const user = await userWithToken(ctx.app)
    const token = await verificationToken(user.email)
    const html = expectPage(await page(`/account/verify-email?token=${token}`), 200)
    expect(html).toContain(`Confirm that ${user.email} is the email address of your account.`)
    expect(html).toContain('<form method="post" action="/account/verify-email">')
    expect((await ctx.app.inject({ method: 'GET', url: '/users/me', headers: user.headers })).json().email_verified).toBe(false)

    const done = await submit('/account/verify-email', { token })
    expect(expectPage(done, 200)).toContain('Your email address is confirmed')
    expect((await ctx.app.inject({ method: 'GET', url: '/users/me', headers: user.headers })).json().email_verified).toBe(true)
    expect(expectPage(await submit('/account/verify-email', { token }), 400)).toContain('This link does not work')
    expect(expectPage(await page('/account/verify-email'), 400)).toContain('This link does not work')
  })

  it('confirms an email change, naming the new address', async () => {
    const user = await userWithToken(ctx.app)
    const next = uniqueEmail('page')
    await ctx.app.inject({ method: 'PATCH', url: '/users/me', headers: user.headers, payload: { email: next, current_password: PASSWORD } })
    const token = await verificationToken(next, /Confirm your new email/)
    expect(expectPage(await page(`/account/verify-email?token=${token}`), 200)).toContain(`Confirm to make ${next} the email address you sign in with.`)
    expect(expectPage(await submit('/account/verify-email', { token }), 200)).toContain('Your email address is changed')
    expect((await login(ctx.app, next)).access_token).toBeDefined()
  })
})

describe('the stylesheet', () => {
  it('is served by the service, cacheable, as CSS', async () => {
    const response = await page(PAGE_STYLESHEET)
    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toBe('text/css; charset=utf-8')
    expect(response.headers['cache-control']).toBe('public, max-age=3600')
    expect(response.body).toContain('main {')
  })
})
