// Delivery of email (src/plugins/app/mailer.ts) against real SMTP servers that
// misbehave: one that is down, one that answers 4xx before it accepts, one that
// refuses for good, one that is slow; and across a restart. Whatever the
// server does, the request that causes an email is answered at once, and the
// email is delivered, retried or given up on with a log line and a count,
// never lost without a trace. Also: the messages themselves (two parts, the
// sender, the product name), the links of RESET_PASSWORD_URL and
// VERIFY_EMAIL_URL, development mode's .eml files, and the configurations the
// service refuses to start with.
import { mkdtemp, readdir, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import { simpleParser } from 'mailparser'
import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'
import app, { serverOptions } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import type { Config } from '../src/config.js'
import { buildApp, clientAddress, fileDatabase, MAIL_FROM, signup, testConfig, uniqueEmail } from './helper.js'
import { type Mailbox, startMailbox, tokenIn } from './mailbox.js'
import { freePort } from './ports.js'

void fileDatabase()

const opened: Array<{ close(): Promise<unknown> }> = []
afterEach(async () => {
  for (const thing of opened.splice(0).reverse()) await thing.close()
  // The file's tests share a database: an email a test left waiting for a retry would be
  // delivered by the next test's app, spending that test's refusals and skewing its counts.
  const database = new pg.Client({ connectionString: (await fileDatabase()).url })
  await database.connect()
  try {
    await database.query("DELETE FROM mail_outbox WHERE status = 'queued'")
  } finally {
    await database.end()
  }
})

/** An app sending to `mailbox` (or to a port), whose log lines are kept. */
async function appSendingTo(target: Mailbox | number, overrides: Partial<Config> = {}) {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    }
  })
  const url = typeof target === 'number' ? `smtp://127.0.0.1:${target}` : target.url
  const fastify = await buildApp({ MAIL_URL: url, MAIL_RETRY_DELAY: 1, ...overrides }, { logger: { level: 'info', stream } })
  opened.push(fastify)
  return { app: fastify, lines }
}

async function mailbox(port?: number) {
  const box = await startMailbox(port)
  opened.push(box)
  return box
}

const forgot = (fastify: FastifyInstance, email: string) =>
  fastify.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email }, remoteAddress: clientAddress() })

const resets = (box: Mailbox, email: string) => box.to(email).filter((message) => /Reset your/.test(message.subject))

/** The outbox row of the reset asked for `email` (found by address: the account is looked up by the worker). */
async function outboxRow(fastify: FastifyInstance, email: string) {
  return fastify.prisma.mailOutbox.findFirstOrThrow({ where: { recipient: email, kind: 'password_reset' } })
}

describe('a mail server that misbehaves', () => {
  it('down: the answer comes at once; the email is retried with backoff and delivered when the server is up', async () => {
    const port = await freePort()
    const { app: fastify, lines } = await appSendingTo(port)
    const user = await signup(fastify)
    expect((await forgot(fastify, user.email)).statusCode).toBe(202)
    // Connection refused: a temporary failure, tried again.
    await expect.poll(async () => (await outboxRow(fastify, user.email)).attempts, { timeout: 15_000 }).toBeGreaterThanOrEqual(2)
    const row = await outboxRow(fastify, user.email)
    expect(row).toMatchObject({ status: 'queued', lastError: expect.stringMatching(/ECONNECTION|ESOCKET|ECONNREFUSED/) })
    expect(lines.some((line) => line.msg === 'email delivery failed; trying again later' && line.level === 40)).toBe(true)

    const box = await mailbox(port)
    await expect.poll(() => resets(box, user.email).length, { timeout: 30_000 }).toBe(1)
    await expect.poll(async () => (await outboxRow(fastify, user.email)).status, { timeout: 15_000 }).toBe('sent')
    expect(fastify.mail.deliveries.sent).toBeGreaterThanOrEqual(1)
  })

  it('4xx, then accepting: retried until it is accepted, and the link of the delivered email works', async () => {
    const box = await mailbox()
    const { app: fastify } = await appSendingTo(box)
    const user = await signup(fastify)
    await box.waitFor(user.email)
    box.refuseNext(2, 451)
    const before = box.attempts
    await forgot(fastify, user.email)
    const messages = await box.waitFor(user.email, 2)
    expect(box.attempts - before).toBe(3)
    expect(fastify.mail.deliveries.retried).toBe(2)
    await expect.poll(async () => (await outboxRow(fastify, user.email)).status, { timeout: 15_000 }).toBe('sent')
    expect((await outboxRow(fastify, user.email)).attempts).toBe(3)
    // Each try made a new link; the one that was delivered is the one that works.
    const reset = await fastify.inject({
      method: 'POST',
      url: '/auth/password/reset',
      payload: { token: tokenIn(messages[1]!), new_password: 'the passphrase after a retry' },
      remoteAddress: clientAddress()
    })
    expect(reset.statusCode).toBe(204)
  })

  it('5xx: given up at once, logged at error level and counted, never retried', async () => {
    const box = await mailbox()
    const { app: fastify, lines } = await appSendingTo(box)
    const user = await signup(fastify)
    await box.waitFor(user.email)
    box.refuseNext(1, 550)
    await forgot(fastify, user.email)
    await expect.poll(() => fastify.mail.deliveries.failed, { timeout: 15_000 }).toBe(1)
    const row = await outboxRow(fastify, user.email)
    expect(row).toMatchObject({ status: 'failed', attempts: 1, lastError: expect.stringContaining('550') })
    const logged = lines.find((line) => line.msg === 'email delivery failed for good')
    expect(logged).toMatchObject({ level: 50, kind: 'password_reset', mail: row.id, reason: expect.stringContaining('550') })
    await fastify.mail.drain()
    expect(box.to(user.email)).toHaveLength(1)
    expect(fastify.mail.deliveries.retried).toBe(0)
  })

  it('slow: the answer does not wait for it; the email arrives when the server answers', async () => {
    const box = await mailbox()
    const { app: fastify } = await appSendingTo(box)
    const user = await signup(fastify)
    await box.waitFor(user.email)
    box.hold()
    const attempts = box.attempts
    const answer = await forgot(fastify, user.email)
    expect(answer.statusCode).toBe(202)
    // The message reached the server, which has not answered: the request was answered anyway.
    await expect.poll(() => box.attempts, { timeout: 15_000 }).toBe(attempts + 1)
    expect(box.to(user.email)).toHaveLength(1)
    box.release()
    const messages = await box.waitFor(user.email, 2)
    expect(messages[1]?.subject).toMatch(/Reset your/)
    expect(fastify.mail.deliveries.retried).toBe(0)
  })

  it('slower than MAIL_TIMEOUT: the try is given up and repeated; the last link is the one that works', async () => {
    const box = await mailbox()
    const { app: fastify } = await appSendingTo(box, { MAIL_TIMEOUT: 1 })
    const user = await signup(fastify)
    await box.waitFor(user.email)
    box.hold()
    await forgot(fastify, user.email)
    await expect.poll(() => fastify.mail.deliveries.retried, { timeout: 30_000 }).toBeGreaterThanOrEqual(1)
    box.release()
    await expect.poll(async () => (await outboxRow(fastify, user.email)).status, { timeout: 30_000 }).toBe('sent')
    // The server may have accepted a try the service gave up on: each try had a link of its
    // own, and only the newest works.
    const statuses = []
    for (const message of resets(box, user.email)) {
      const answer = await fastify.inject({
        method: 'POST',
        url: '/auth/password/reset',
        payload: { token: tokenIn(message), new_password: 'the passphrase after a timeout' },
        remoteAddress: clientAddress()
      })
      statuses.push(answer.statusCode)
    }
    expect(statuses.filter((status) => status === 204)).toHaveLength(1)
  })

  it('an email that cannot be delivered in time is given up, with a log line, not kept trying forever', async () => {
    const port = await freePort()
    // The first retry would come after the link has expired.
    const { app: fastify, lines } = await appSendingTo(port, { MAIL_RETRY_DELAY: 120, RESET_TOKEN_TTL: 60 })
    const user = await signup(fastify)
    await forgot(fastify, user.email)
    await expect.poll(async () => (await outboxRow(fastify, user.email)).status, { timeout: 15_000 }).toBe('failed')
    expect(lines.find((line) => line.msg === 'email delivery failed for good')).toMatchObject({ level: 50, kind: 'password_reset' })
    expect(fastify.mail.deliveries.failed).toBeGreaterThanOrEqual(1)
  })

  it('queued mail survives a restart: the next instance delivers it', async () => {
    const port = await freePort()
    const first = await appSendingTo(port, { MAIL_RETRY_DELAY: 1 })
    const user = await signup(first.app)
    await forgot(first.app, user.email)
    await expect.poll(async () => (await outboxRow(first.app, user.email)).attempts, { timeout: 15_000 }).toBeGreaterThanOrEqual(1)
    await first.app.close()

    const box = await mailbox(port)
    const second = await appSendingTo(box)
    // Still queued: closing the first instance gave back what it was trying to deliver.
    expect((await outboxRow(second.app, user.email)).status).toBe('queued')
    expect(await second.app.mail.waiting()).toBeGreaterThanOrEqual(1)
    await second.app.mail.drain()
    await expect.poll(() => resets(box, user.email).length, { timeout: 30_000 }).toBe(1)
    expect((await outboxRow(second.app, user.email)).status).toBe('sent')
  })
})

describe('the messages', () => {
  it('have a text and an HTML part, the configured sender and product name, and nothing the account wrote', async () => {
    const box = await mailbox()
    const { app: fastify } = await appSendingTo(box, { PRODUCT_NAME: 'Acme <Notes>' })
    const user = await signup(fastify, { full_name: 'Visit https://evil.example now' })
    const [message] = await box.waitFor(user.email)
    const parsed = message!.parsed
    expect(parsed.from?.value).toEqual([{ name: 'Blog API', address: 'no-reply@blog.example' }])
    expect(message!.subject).toBe('Confirm your email address for Acme <Notes>')
    expect(message!.text).toContain('Acme <Notes>')
    // The HTML part escapes what it shows, and links the same token as the text part.
    expect(message!.html).toContain('Acme &lt;Notes&gt;')
    expect(message!.html).toContain(`token=${tokenIn(message!)}`)
    expect(message!.raw.toString()).toMatch(/multipart\/alternative/)
    for (const part of [message!.text, message!.html]) expect(part).not.toContain('evil.example')
  })

  it('link to the front end given by RESET_PASSWORD_URL and VERIFY_EMAIL_URL', async () => {
    const box = await mailbox()
    const { app: fastify } = await appSendingTo(box, {
      RESET_PASSWORD_URL: 'https://app.example/reset#token={token}',
      VERIFY_EMAIL_URL: 'https://app.example/verify?t={token}&from=mail'
    })
    const user = await signup(fastify)
    const [verification] = await box.waitFor(user.email)
    expect(verification!.text).toMatch(/https:\/\/app\.example\/verify\?t=bapi_ev_[\w-]{43}&from=mail/)
    await forgot(fastify, user.email)
    const messages = await box.waitFor(user.email, 2)
    expect(messages[1]!.text).toMatch(/https:\/\/app\.example\/reset#token=bapi_pr_[\w-]{43}/)
  })
})

describe('development mode', () => {
  it('writes each email as an .eml file under .data/mail/ and logs its link', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mail-dev-'))
    const lines: Array<Record<string, unknown>> = []
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>)
        done()
      }
    })
    // What server.ts builds without DATABASE_URL: no MAIL_URL, a development folder (here on the test database).
    const config = { ...(await testConfig()), MAIL_URL: undefined, MAIL_FROM: undefined }
    const fastify = Fastify({ ...serverOptions(config), logger: { level: 'info', stream } })
    opened.push(fastify)
    await fastify.register(app, { config, developmentDir: dir })
    await fastify.ready()

    const email = uniqueEmail('dev')
    await signup(fastify, { email })
    await fastify.mail.drain()
    const files = await readdir(path.join(dir, 'mail'))
    expect(files).toHaveLength(1)
    expect(files[0]).toMatch(/^\d{4}-\d\d-\d\dT.*-email_verification\.eml$/)
    const parsed = await simpleParser(await readFile(path.join(dir, 'mail', files[0]!)))
    expect(parsed.to && 'text' in parsed.to ? parsed.to.text : '').toBe(email)
    expect(parsed.from?.value).toEqual([{ name: 'Blog API', address: 'no-reply@localhost' }])
    expect(parsed.text).toMatch(/\/account\/verify-email\?token=bapi_ev_/)
    expect(parsed.html).toContain('Confirm my email address')
    const logged = lines.find((line) => typeof line.link === 'string')
    expect(logged).toMatchObject({ level: 30, to: email, file: expect.stringContaining('email_verification.eml') })
    expect(parsed.text).toContain(String(logged?.link))
  })
})

describe('configuration', () => {
  const production = { DATABASE_URL: 'postgresql://localhost/x' }

  it('outside development mode, refuses to start without MAIL_URL unless MAIL_DISABLED=true, naming the variable', () => {
    expect(() => loadConfig(production)).toThrow(/^MAIL_URL is required outside development mode/)
    expect(loadConfig({ ...production, MAIL_DISABLED: 'true' }).MAIL_DISABLED).toBe(true)
    expect(loadConfig({}).MAIL_URL).toBeUndefined()
  })

  it('refuses settings that contradict each other or cannot work', () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ MAIL_URL: 'http://mail.example' }, /^MAIL_URL must be smtp:/],
      [{ MAIL_URL: 'not a url' }, /^MAIL_URL must be smtp:/],
      [{ MAIL_URL: 'smtp://mail.example:587' }, /^MAIL_FROM is required with MAIL_URL/],
      [{ MAIL_URL: 'smtp://mail.example:587', MAIL_FROM: 'Blog API' }, /^MAIL_FROM is required with MAIL_URL: one sender/],
      [{ MAIL_URL: 'smtp://mail.example:587', MAIL_FROM: 'a@example.com, b@example.com' }, /^MAIL_FROM/],
      [{ MAIL_DISABLED: 'true', MAIL_URL: 'smtp://mail.example', MAIL_FROM: MAIL_FROM }, /^MAIL_DISABLED=true and MAIL_URL contradict/],
      [{ MAIL_DISABLED: 'true', REQUIRE_VERIFIED_EMAIL: 'true' }, /^REQUIRE_VERIFIED_EMAIL=true needs email/],
      [{ RESET_PASSWORD_URL: 'https://app.example/reset' }, /^RESET_PASSWORD_URL must be an http\(s\) URL containing \{token\}/],
      [{ VERIFY_EMAIL_URL: 'javascript:alert(1)//{token}' }, /^VERIFY_EMAIL_URL must be/],
      [{ RESET_TOKEN_TTL: '10' }, /RESET_TOKEN_TTL/]
    ]
    for (const [env, message] of cases) expect(() => loadConfig(env), JSON.stringify(env)).toThrow(message)
    // An empty variable is an unset one (as Compose passes `${VAR:-}` on).
    expect(loadConfig({ MAIL_URL: '', ADMIN_EMAIL: '' }).MAIL_URL).toBeUndefined()
    expect(loadConfig({ MAIL_URL: 'smtps://u:p@mail.example:465', MAIL_FROM: '"Blog, the API" <no-reply@mail.example>' }).MAIL_URL).toBeDefined()
  })

  it('MAIL_DISABLED: no email route, none in the docs; signup works and an email change happens at once', async () => {
    const fastify = await buildApp({ MAIL_DISABLED: true, MAIL_URL: undefined })
    opened.push(fastify)
    const paths = Object.keys((await fastify.inject({ method: 'GET', url: '/docs/json' })).json<{ paths: object }>().paths)
    // (The signup page stays: it needs no email.)
    expect(paths.filter((route) => /\/auth\/password\/|email|\/account\/(?!signup$)/.test(route))).toEqual([])
    for (const [method, url] of [
      ['POST', '/auth/password/forgot'],
      ['POST', '/auth/password/reset'],
      ['POST', '/auth/email/verify'],
      ['GET', '/account/reset-password']
    ] as const) {
      expect((await fastify.inject({ method, url, payload: method === 'POST' ? {} : undefined })).statusCode).toBe(404)
    }
    const user = await signup(fastify)
    const token = (
      await fastify.inject({
        method: 'POST',
        url: '/auth/token',
        remoteAddress: clientAddress(),
        payload: { grant_type: 'password', username: user.email, password: user.password }
      })
    ).json<{ access_token: string }>().access_token
    const next = uniqueEmail('direct')
    const changed = await fastify.inject({
      method: 'PATCH',
      url: '/users/me',
      headers: { authorization: `Bearer ${token}` },
      payload: { email: next, current_password: user.password }
    })
    expect(changed.json()).toMatchObject({ email: next, email_verified: false })
    expect(await fastify.prisma.mailOutbox.count({ where: { userId: user.id } })).toBe(0)
  })
})
