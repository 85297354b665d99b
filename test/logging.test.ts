// The service's logs never hold a password, token, client secret or
// Authorization header: the log output of logins, refreshes, failures, a
// password change and a password reset by email (whose link carries its token
// in the URL of a page), captured at the most verbose level, is searched for each.
// And every request is one log line, with what an operator looks for.
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import app, { loggerOptions, serverOptions } from '../src/app.js'
import {
  basicAuth,
  bearer,
  clientAddress,
  fileMailbox,
  PASSWORD,
  serviceClient,
  signup,
  testConfig,
  tokenRequest,
  type TokenAnswer
} from './helper.js'
import { tokenIn } from './mailbox.js'

const lines: string[] = []
const context = {} as { app: FastifyInstance }

beforeAll(async () => {
  const config = await testConfig({ LOG_LEVEL: 'trace' })
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'))
      done()
    }
  })
  // The server's own options (tests/helper.ts builds apps silent), its logger writing into `lines`.
  context.app = Fastify({ ...serverOptions(config), logger: { ...loggerOptions(config), stream } })
  await context.app.register(app, { config })
  // Careless code that logs a whole request: redaction must still blank the credentials.
  context.app.post('/careless', async (request) => {
    request.log.info({ headers: request.headers, body: request.body }, 'a careless log line')
    request.log.info({ request: { headers: request.headers, body: request.body } }, 'a nested careless log line')
    return { ok: true }
  })
  await context.app.ready()
})

afterAll(async () => {
  await context.app?.close()
})

describe('logs', () => {
  it('hold no password, token, client secret or Authorization header', async () => {
    const fastify = context.app
    const secrets: string[] = []
    const wrongPassword = 'a wrong guess at the password'
    const newPassword = 'the new secret passphrase'
    secrets.push(PASSWORD, wrongPassword, newPassword)

    const user = await signup(fastify)
    const login = await tokenRequest(fastify, { grant_type: 'password', username: user.email, password: PASSWORD })
    expect(login.statusCode).toBe(200)
    const first = login.json<TokenAnswer>()
    secrets.push(first.access_token, first.refresh_token ?? '', bearer(first.access_token).authorization)

    const refreshed = await tokenRequest(fastify, { grant_type: 'refresh_token', refresh_token: first.refresh_token ?? '' })
    expect(refreshed.statusCode).toBe(200)
    const second = refreshed.json<TokenAnswer>()
    secrets.push(second.access_token, second.refresh_token ?? '')

    // A retry of the latest rotation gets the same token again; an older token is reuse, which ends
    // the session (and is logged as an event, not with the token).
    const retried = await tokenRequest(fastify, { grant_type: 'refresh_token', refresh_token: first.refresh_token ?? '' })
    expect(retried.json<TokenAnswer>().refresh_token).toBe(second.refresh_token)
    secrets.push(retried.json<TokenAnswer>().access_token)
    const third = (await tokenRequest(fastify, { grant_type: 'refresh_token', refresh_token: second.refresh_token ?? '' })).json<TokenAnswer>()
    secrets.push(third.access_token, third.refresh_token ?? '')
    expect((await tokenRequest(fastify, { grant_type: 'refresh_token', refresh_token: first.refresh_token ?? '' })).statusCode).toBe(400)
    const failed = await tokenRequest(fastify, { grant_type: 'password', username: user.email, password: wrongPassword })
    expect(failed.statusCode).toBe(400)

    const client = await serviceClient(fastify, ['users:read'])
    const wrongSecret = `${client.clientSecret.slice(0, -4)}XXXX`
    const basic = basicAuth(client.clientId, wrongSecret)
    secrets.push(client.clientSecret, wrongSecret, basic, basic.slice('Basic '.length))
    expect((await tokenRequest(fastify, { grant_type: 'client_credentials' }, { authorization: basic })).statusCode).toBe(401)
    const inBody = await tokenRequest(fastify, { grant_type: 'client_credentials', client_id: client.clientId, client_secret: wrongSecret })
    expect(inBody.statusCode).toBe(401)
    const clientLogin = await tokenRequest(fastify, {
      grant_type: 'client_credentials',
      client_id: client.clientId,
      client_secret: client.clientSecret
    })
    expect(clientLogin.statusCode).toBe(200)
    secrets.push(clientLogin.json<TokenAnswer>().access_token)

    // A fresh login (the reuse above ended the first session), then a password change with it.
    const again = (await tokenRequest(fastify, { grant_type: 'password', username: user.email, password: PASSWORD })).json<TokenAnswer>()
    secrets.push(again.access_token, again.refresh_token ?? '')
    const change = await fastify.inject({
      method: 'PUT',
      url: '/users/me/password',
      headers: bearer(again.access_token),
      payload: { current_password: PASSWORD, new_password: newPassword }
    })
    expect(change.statusCode).toBe(204)
    const refused = await fastify.inject({ method: 'GET', url: '/users/me', headers: bearer(`${again.access_token}x`) })
    expect(refused.statusCode).toBe(401)
    expect((await fastify.inject({ method: 'POST', url: '/auth/revoke', payload: { token: again.refresh_token } })).statusCode).toBe(200)

    // The links sent by email: their tokens travel in page URLs and in bodies.
    await fastify.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: user.email } })
    const mailbox = await fileMailbox()
    const [resetMail] = (await mailbox.waitFor(user.email, 2)).filter((message) => /Reset your/.test(message.subject))
    const [verifyMail] = mailbox.to(user.email).filter((message) => /Confirm your email/.test(message.subject))
    const resetToken = tokenIn(resetMail!)
    const verifyToken = tokenIn(verifyMail!)
    const pagePassword = 'the passphrase typed into the reset page'
    secrets.push(resetToken, verifyToken, pagePassword, encodeURIComponent(resetToken))
    expect((await fastify.inject({ method: 'GET', url: `/account/reset-password?token=${resetToken}` })).statusCode).toBe(200)
    // (The signup's verification link died with the password change; its URL is logged all the same.)
    expect((await fastify.inject({ method: 'GET', url: `/account/verify-email?utm=x&token=${verifyToken}` })).statusCode).toBe(400)
    const pageReset = await fastify.inject({
      method: 'POST',
      url: '/account/reset-password',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ token: resetToken, new_password: pagePassword, new_password_again: pagePassword }).toString()
    })
    expect(pageReset.statusCode).toBe(200)
    expect((await fastify.inject({ method: 'POST', url: '/auth/email/verify', payload: { token: verifyToken } })).statusCode).toBe(400)
    await fastify.mail.drain()

    const careless = await fastify.inject({
      method: 'POST',
      url: '/careless',
      headers: { authorization: bearer(again.access_token).authorization, cookie: `session=${again.refresh_token}` },
      payload: { password: PASSWORD, client_secret: client.clientSecret, refresh_token: again.refresh_token, new_password: newPassword }
    })
    expect(careless.statusCode).toBe(200)

    const output = lines.join('')
    // The capture works: the logger is at trace level, every request is there, and so are the careless lines.
    expect(output).toContain('"url":"/auth/token"')
    expect(output).toContain('"url":"/users/me/password"')
    expect(output).toContain('"url":"/account/reset-password?token=[redacted]"')
    expect(output).toContain('"url":"/account/verify-email?utm=x&token=[redacted]"')
    expect(output).toContain('email delivered')
    expect(fastify.log.level).toBe('trace')
    expect(output).toContain('a careless log line')
    expect(output).toContain('[redacted]')
    for (const secret of secrets.filter(Boolean)) {
      expect(output, `a log line contains ${secret.slice(0, 12)}…`).not.toContain(secret)
    }
    // Nor any piece of a token long enough to matter (a JWT's signature, a refresh token without its prefix).
    for (const token of [first.access_token, second.access_token, again.access_token]) {
      expect(output).not.toContain(token.split('.')[2])
    }
    expect(output).not.toMatch(/bapi_rt_[A-Za-z0-9_-]{20}/)
    expect(output).not.toMatch(/bapi_cs_[A-Za-z0-9_-]{20}/)
    expect(output).not.toMatch(/bapi_(pr|ev)_[A-Za-z0-9_-]{20}/)
  })
})

describe('request lines', () => {
  interface Line {
    level: number
    msg: string
    reqId?: string
    method?: string
    url?: string
    remoteAddress?: string
    statusCode?: number
    responseTime?: number
  }

  it('are one per request, with its method, URL, status and time', async () => {
    const fastify = context.app
    const before = lines.length
    const address = clientAddress()
    const answers = [
      await fastify.inject({ method: 'GET', url: '/health', remoteAddress: address }),
      await fastify.inject({ method: 'GET', url: '/posts/00000000-0000-4000-8000-000000000000?x=1', remoteAddress: address }),
      await fastify.inject({ method: 'GET', url: '/no/such/route', remoteAddress: address }),
      await tokenRequest(fastify, { grant_type: 'password' }, {}, address)
    ]
    expect(answers.map((answer) => answer.statusCode)).toEqual([200, 404, 404, 400])

    const written = lines.slice(before).map((line) => JSON.parse(line) as Line)
    const requestLines = written.filter((line) => line.url !== undefined)
    expect(requestLines.map((line) => [line.msg, line.method, line.url, line.statusCode])).toEqual([
      ['request completed', 'GET', '/health', 200],
      ['request completed', 'GET', '/posts/00000000-0000-4000-8000-000000000000?x=1', 404],
      ['request completed', 'GET', '/no/such/route', 404],
      ['request completed', 'POST', '/auth/token', 400]
    ])
    for (const line of requestLines) {
      expect(line.level).toBe(30)
      expect(line.reqId).toMatch(/^req-/)
      expect(line.responseTime).toBeGreaterThan(0)
      expect(line.remoteAddress).toBe(address)
    }
    expect(new Set(requestLines.map((line) => line.reqId)).size).toBe(4)
    expect(written.filter((line) => line.msg === 'incoming request')).toEqual([])
  })

  it('are written at info: a service at warn writes none', async () => {
    const config = await testConfig({ LOG_LEVEL: 'warn' })
    const quiet: string[] = []
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        quiet.push(chunk.toString('utf8'))
        done()
      }
    })
    const fastify = Fastify({ ...serverOptions(config), logger: { ...loggerOptions(config), stream } })
    try {
      await fastify.register(app, { config })
      await fastify.ready()
      expect((await fastify.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200)
      expect(quiet).toEqual([])
    } finally {
      await fastify.close()
    }
  })
})
