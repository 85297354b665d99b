// GET /metrics: off without METRICS_PORT or METRICS_TOKEN, behind the token on
// the main port, or on a port of its own. A scrape taken after a realistic mix
// of requests passes `promtool check metrics`, labels requests by route
// pattern (never a raw URL), and its counters moved by what happened. The
// README's example alert rules pass `promtool check rules`.
import { randomUUID } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, buildApp, clientAddress, login, PASSWORD, signup, tokenRequest, userWithToken } from './helper.js'
import { PROMTOOL, promtool } from './promtool.js'

const TOKEN = 'metrics-token-for-the-test-0123456789'

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** The samples of a Prometheus text exposition. */
function samples(text: string): Sample[] {
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line)
      if (!match) throw new Error(`not a sample line: ${line}`)
      const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]))
      return { name: match[1] ?? '', labels, value: Number(match[3]) }
    })
}

/** The value of the one sample with that name and (at least) those labels; 0 when there is none. */
function value(all: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = all.filter((sample) => sample.name === name && Object.entries(labels).every(([key, v]) => sample.labels[key] === v))
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} samples`)
  return found[0]?.value ?? 0
}

describe('metrics behind METRICS_TOKEN on the main port', () => {
  let app: FastifyInstance
  beforeAll(async () => {
    app = await buildApp({ METRICS_TOKEN: TOKEN, LOGIN_LOCKOUT_THRESHOLD: 2 })
  })
  afterAll(async () => {
    await app?.close()
  })

  const scrape = async () => {
    const response = await app.inject({ method: 'GET', url: '/metrics', headers: bearer(TOKEN) })
    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toContain('text/plain')
    return response.body
  }

  it('refuses a scrape without the token, or with another one', async () => {
    const none = await app.inject({ method: 'GET', url: '/metrics' })
    expect(none.statusCode).toBe(401)
    expect(none.headers['www-authenticate']).toBe('Bearer realm="metrics"')
    expect(none.headers['content-type']).toContain('application/problem+json')
    const wrong = await app.inject({ method: 'GET', url: '/metrics', headers: bearer(`${TOKEN}x`) })
    expect(wrong.statusCode).toBe(401)
    // An operators' route: not part of the API's document.
    const document = await app.inject({ method: 'GET', url: '/docs/json' })
    expect(Object.keys(document.json().paths)).not.toContain('/metrics')
  })

  it('after a realistic mix of requests, counts what happened and passes promtool check metrics', async () => {
    const before = samples(await scrape())

    // A user signs up, logs in, refreshes twice, and a stolen refresh token (not the latest) is replayed.
    const user = await userWithToken(app)
    const refreshed = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: user.tokens.refresh_token ?? '' })
    expect(refreshed.statusCode).toBe(200)
    expect((await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: refreshed.json().refresh_token })).statusCode).toBe(200)
    const replayed = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: user.tokens.refresh_token ?? '' })
    expect(replayed.statusCode).toBe(400)

    // Someone guesses another account's password, from one address, until it is locked out there.
    const victim = await signup(app)
    const attacker = clientAddress()
    for (let attempt = 0; attempt < 2; attempt++) {
      const guess = await tokenRequest(app, { grant_type: 'password', username: victim.email, password: 'not the password at all' }, {}, attacker)
      expect(guess.statusCode).toBe(400)
    }
    const locked = await tokenRequest(app, { grant_type: 'password', username: victim.email, password: PASSWORD }, {}, attacker)
    expect(locked.statusCode).toBe(429)

    // Posts: a write, a read from the database, a read from memory, a miss, a URL no route has.
    const author = await login(app, user.email)
    const created = await app.inject({
      method: 'POST',
      url: '/posts',
      headers: bearer(author.access_token),
      payload: { title: 'Measured', content: 'A post read twice.' }
    })
    expect(created.statusCode).toBe(201)
    const postId = created.json<{ id: string }>().id
    for (let read = 0; read < 2; read++) expect((await app.inject({ method: 'GET', url: `/posts/${postId}` })).statusCode).toBe(200)
    const missingId = randomUUID()
    expect((await app.inject({ method: 'GET', url: `/posts/${missingId}` })).statusCode).toBe(404)
    expect((await app.inject({ method: 'GET', url: '/no/such/route' })).statusCode).toBe(404)

    // One address floods the revocation endpoint past its rate limit (20 a minute).
    for (let request = 0; request <= 20; request++) {
      await app.inject({ method: 'POST', url: '/auth/revoke', remoteAddress: '203.0.113.7', payload: { token: 'nothing' } })
    }

    // The two signups each queued a verification email; both reach the test's SMTP server.
    await app.mail.drain()

    const text = await scrape()
    const after = samples(text)
    const moved = (name: string, labels: Record<string, string> = {}) => value(after, name, labels) - value(before, name, labels)

    expect(moved('blog_api_logins_total', { outcome: 'success' })).toBe(2)
    expect(moved('blog_api_logins_total', { outcome: 'failure' })).toBe(2)
    expect(moved('blog_api_logins_total', { outcome: 'locked' })).toBe(1)
    expect(moved('blog_api_login_lockouts_total')).toBe(1)
    expect(moved('blog_api_refresh_token_reuse_total')).toBe(1)
    expect(moved('blog_api_sessions_revoked_total')).toBe(1)
    expect(moved('blog_api_rate_limited_requests_total', { route: '/auth/revoke' })).toBe(1)
    expect(moved('blog_api_post_cache_lookups_total', { result: 'hit' })).toBe(1)
    expect(moved('blog_api_post_cache_lookups_total', { result: 'miss' })).toBe(2)
    // Signup and the logins each hashed or verified a password once: 2 signups, 4 verifications.
    expect(moved('blog_api_password_hash_duration_seconds_count', { operation: 'hash' })).toBe(2)
    expect(moved('blog_api_password_hash_duration_seconds_count', { operation: 'verify' })).toBe(4)
    expect(moved('blog_api_password_hash_wait_seconds_count')).toBe(6)
    expect(moved('blog_api_mail_deliveries_total', { outcome: 'queued' })).toBe(2)
    expect(moved('blog_api_mail_deliveries_total', { outcome: 'sent' })).toBe(2)
    expect(value(after, 'blog_api_mail_queue')).toBe(0)

    // Requests by route pattern and status; an id never becomes a label.
    expect(moved('http_requests_total', { method: 'GET', route: '/posts/:id', status_code: '200' })).toBe(2)
    expect(moved('http_requests_total', { method: 'GET', route: '/posts/:id', status_code: '404' })).toBe(1)
    expect(moved('http_requests_total', { method: 'GET', route: 'unmatched', status_code: '404' })).toBe(1)
    expect(moved('http_request_duration_seconds_count', { method: 'POST', route: '/auth/token', status_code: '429' })).toBe(1)
    expect(text).not.toContain(postId)
    expect(text).not.toContain(missingId)
    expect(text).not.toContain('/no/such/route')

    // The state an operator watches, and the process itself.
    expect(value(after, 'blog_api_notification_listener_up')).toBe(1)
    expect(value(after, 'blog_api_revocation_notification_lag_seconds')).toBeGreaterThanOrEqual(0)
    expect(value(after, 'blog_api_db_pool_connections', { state: 'idle' })).toBeGreaterThanOrEqual(1)
    expect(after.some((sample) => sample.name === 'blog_api_db_pool_waiting')).toBe(true)
    expect(after.some((sample) => sample.name === 'blog_api_password_hash_queue')).toBe(true)
    expect(value(after, 'blog_api_post_cache_entries')).toBeGreaterThanOrEqual(1)
    expect(after.some((sample) => sample.name === 'nodejs_eventloop_lag_p99_seconds')).toBe(true)
    expect(after.some((sample) => sample.name === 'process_resident_memory_bytes')).toBe(true)

    if (PROMTOOL) {
      const check = promtool(['check', 'metrics'], text)
      expect(check.output).toBe('')
      expect(check.status).toBe(0)
    }
  })
})

describe('metrics on METRICS_PORT', () => {
  let app: FastifyInstance
  let port: number | undefined
  beforeAll(async () => {
    app = await buildApp({ METRICS_PORT: 0, METRICS_TOKEN: TOKEN })
    port = await app.metrics.listen()
  })
  afterAll(async () => {
    await app?.close()
  })

  it('serves them there, with the token when one is set, and not on the main port', async () => {
    expect(port).toBeGreaterThan(0)
    const base = `http://127.0.0.1:${port}`
    expect((await fetch(`${base}/metrics`)).status).toBe(401)
    const scrape = await fetch(`${base}/metrics`, { headers: bearer(TOKEN) })
    expect(scrape.status).toBe(200)
    expect(await scrape.text()).toContain('# TYPE http_requests_total counter')
    expect((await fetch(`${base}/other`, { headers: bearer(TOKEN) })).status).toBe(404)
    expect((await app.inject({ method: 'GET', url: '/metrics', headers: bearer(TOKEN) })).statusCode).toBe(404)
  })
})

describe('without METRICS_PORT or METRICS_TOKEN', () => {
  let app: FastifyInstance
  beforeAll(async () => {
    app = await buildApp()
  })
  afterAll(async () => {
    await app?.close()
  })

  it('serves no metrics, and counts nothing per request', async () => {
    expect(app.metrics.served).toBe(false)
    expect(await app.metrics.listen()).toBeUndefined()
    expect((await app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404)
    expect(await app.metrics.registry.metrics()).not.toContain('http_requests_total')
  })
})

describe("the README's example alert rules", () => {
  it.runIf(PROMTOOL)('pass promtool check rules', async () => {
    const readme = await readFile(join(import.meta.dirname, '..', 'README.md'), 'utf8')
    const rules = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((match) => match[1] ?? '').find((block) => block.includes('groups:'))
    expect(rules, 'a ```yaml block with the alert rules').toBeDefined()
    const folder = await mkdtemp(join(tmpdir(), 'alert-rules-'))
    try {
      const file = join(folder, 'blog-api.rules.yml')
      await writeFile(file, rules ?? '')
      const check = promtool(['check', 'rules', file])
      expect(check.output).toMatch(/SUCCESS: \d+ rules found/)
      expect(check.status).toBe(0)
      // Every metric an alert reads is one the service exports.
      const names = [...(rules ?? '').matchAll(/\b((?:blog_api|http)_[a-z_]+)/g)].map((match) => match[1] ?? '')
      expect(names.length).toBeGreaterThan(3)
      const exported = await exportedNames()
      for (const name of names) expect(exported, name).toContain(name)
    } finally {
      await rm(folder, { recursive: true, force: true })
    }
  })
})

/** Every series name a fresh app exports (a histogram's _bucket, _sum and _count included). */
async function exportedNames(): Promise<Set<string>> {
  const app = await buildApp({ METRICS_TOKEN: TOKEN })
  try {
    const text = (await app.inject({ method: 'GET', url: '/metrics', headers: bearer(TOKEN) })).body
    const names = new Set<string>()
    for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      if (!name) continue
      names.add(name)
      if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix)
    }
    return names
  } finally {
    await app.close()
  }
}
