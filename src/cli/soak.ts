// Soak test for a running instance: several concurrent clients sign up, log
// in, refresh, create, read, update and delete posts and send bad requests
// for a while; then every post acknowledged with 201 and not deleted is read
// back and compared. Reports requests, status counts and latencies per
// operation, and exits non-zero on any 5xx, network error, or lost or
// changed post.
//   npm run soak -- --seconds 300 [--url http://127.0.0.1:3000] [--clients 8] [--json]
// --json prints the report as one JSON object on standard output (the text
// goes to standard error), with each 5xx and network error and when it was
// sent and answered, for a harness that knows which of them it caused.
// It sends real load: point it at loopback unless --allow-remote is given.
import { randomBytes, randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'

interface Options {
  base: string
  seconds: number
  clients: number
  json: boolean
}

interface Answer {
  status: number
  body: unknown
  headers: Headers
}

interface Tokens {
  access: string
  refresh: string
}

interface AcknowledgedPost {
  id: string
  title: string
  content: string
  etag?: string
}

const PASSWORD = 'soak-test password, long enough'

/** A 5xx or a network error: what, and when it was sent and answered (epoch ms). */
interface Failure {
  operation: string
  status: number
  sentAt: number
  answeredAt: number
  detail: string
}

/** Everything measured during the run. */
class Stats {
  readonly latencies = new Map<string, number[]>()
  readonly statuses = new Map<string, Map<number, number>>()
  readonly unexpected: string[] = []
  readonly failures: Failure[] = []
  networkErrors = 0
  serverErrors = 0

  fail(failure: Failure) {
    if (this.failures.length < 1000) this.failures.push(failure)
  }

  record(operation: string, status: number, ms: number) {
    const list = this.latencies.get(operation) ?? []
    list.push(ms)
    this.latencies.set(operation, list)
    const counts = this.statuses.get(operation) ?? new Map<number, number>()
    counts.set(status, (counts.get(status) ?? 0) + 1)
    this.statuses.set(operation, counts)
    if (status >= 500) this.serverErrors++
  }

  note(message: string) {
    // The first few are enough to debug with; the count says the rest.
    if (this.unexpected.length < 50) this.unexpected.push(message)
  }
}

class Client {
  private tokens: Tokens | undefined
  private readonly posts: AcknowledgedPost[] = []

  constructor(
    private readonly options: Options,
    private readonly stats: Stats,
    private readonly acknowledged: Map<string, AcknowledgedPost>,
    private readonly email = `soak-${randomUUID()}@example.com`
  ) {}

  async request(
    operation: string,
    method: string,
    path: string,
    init: { json?: unknown; form?: Record<string, string>; raw?: { type?: string; body: Uint8Array | string }; auth?: boolean; headers?: Record<string, string> } = {}
  ): Promise<Answer | undefined> {
    const headers: Record<string, string> = { ...init.headers }
    let body: string | Uint8Array | undefined
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json'
      body = JSON.stringify(init.json)
    } else if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded'
      body = new URLSearchParams(init.form).toString()
    } else if (init.raw) {
      if (init.raw.type) headers['content-type'] = init.raw.type
      body = init.raw.body
    }
    if (init.auth && this.tokens) headers.authorization = `Bearer ${this.tokens.access}`
    const started = performance.now()
    const sentAt = Date.now()
    try {
      const response = await fetch(this.options.base + path, { method, headers, body, signal: AbortSignal.timeout(30_000) })
      const text = await response.text()
      const ms = performance.now() - started
      this.stats.record(operation, response.status, ms)
      let parsed: unknown = text
      try {
        parsed = text === '' ? undefined : JSON.parse(text)
      } catch {
        // not JSON: kept as text
      }
      if (response.status >= 500) {
        this.stats.note(`${operation}: ${response.status} ${text.slice(0, 200)}`)
        this.stats.fail({ operation, status: response.status, sentAt, answeredAt: Date.now(), detail: text.slice(0, 200) })
      }
      return { status: response.status, body: parsed, headers: response.headers }
    } catch (error) {
      this.stats.networkErrors++
      this.stats.record(operation, 0, performance.now() - started)
      this.stats.note(`${operation}: network error ${(error as Error).message}`)
      this.stats.fail({ operation, status: 0, sentAt, answeredAt: Date.now(), detail: (error as Error).message })
      return undefined
    }
  }

  /** The answer if its status is one expected, else undefined (and unexpected 4xx are noted). */
  private accept(operation: string, answer: Answer | undefined, ...expected: number[]): Answer | undefined {
    if (!answer) return undefined
    if (expected.includes(answer.status)) return answer
    // 429 is the rate limit doing its job, and 503 under pressure is answered on purpose.
    if (answer.status !== 429 && answer.status < 500) {
      this.stats.note(`${operation}: expected ${expected.join('/')}, got ${answer.status} ${JSON.stringify(answer.body).slice(0, 200)}`)
    }
    return undefined
  }

  async start() {
    const signup = await this.request('signup', 'POST', '/auth/signup', {
      json: { email: this.email, full_name: 'Soak Client', password: PASSWORD }
    })
    if (!this.accept('signup', signup, 201)) throw new Error(`signup failed: ${signup?.status ?? 'network error'}`)
    if (!(await this.login())) throw new Error('the first login failed')
  }

  private takeTokens(answer: Answer) {
    const body = answer.body as { access_token: string; refresh_token: string }
    this.tokens = { access: body.access_token, refresh: body.refresh_token }
  }

  async login(): Promise<boolean> {
    const answer = await this.request('login', 'POST', '/auth/token', {
      form: { grant_type: 'password', username: this.email, password: PASSWORD }
    })
    const accepted = this.accept('login', answer, 200)
    if (!accepted) return false
    this.takeTokens(accepted)
    return true
  }

  async refresh() {
    if (!this.tokens) return
    const answer = await this.request('refresh', 'POST', '/auth/token', {
      form: { grant_type: 'refresh_token', refresh_token: this.tokens.refresh }
    })
    const accepted = this.accept('refresh', answer, 200)
    if (accepted) this.takeTokens(accepted)
  }

  async createPost() {
    const post = { title: `Soak ${randomUUID().slice(0, 8)}`, content: `Body ${randomBytes(24).toString('base64')} ✓ ünïcødé` }
    const answer = await this.request('post.create', 'POST', '/posts', { json: post, auth: true })
    const accepted = this.accept('post.create', answer, 201)
    if (!accepted) return
    const { id } = accepted.body as { id: string }
    const acknowledged = { id, ...post }
    this.posts.push(acknowledged)
    this.acknowledged.set(id, acknowledged)
  }

  private pick(): AcknowledgedPost | undefined {
    return this.posts[Math.floor(Math.random() * this.posts.length)]
  }

  async readPost() {
    const post = this.pick()
    if (!post) return this.listPosts()
    const answer = await this.request('post.read', 'GET', `/posts/${post.id}`)
    const accepted = this.accept('post.read', answer, 200)
    if (!accepted) return
    const body = accepted.body as { title: string; content: string }
    if (body.title !== post.title || body.content !== post.content) this.stats.note(`post.read: ${post.id} differs from what was written`)
    post.etag = accepted.headers.get('etag') ?? undefined
  }

  async listPosts() {
    const answer = await this.request('post.list', 'GET', '/posts?limit=20')
    this.accept('post.list', answer, 200)
  }

  async updatePost() {
    const post = this.pick()
    if (!post) return
    if (!post.etag) {
      await this.readPost()
      if (!post.etag) return
    }
    const title = `Edited ${randomUUID().slice(0, 8)}`
    const answer = await this.request('post.update', 'PATCH', `/posts/${post.id}`, {
      json: { title },
      auth: true,
      headers: { 'if-match': post.etag }
    })
    if (answer?.status === 412) {
      post.etag = undefined
      return
    }
    const accepted = this.accept('post.update', answer, 200)
    if (!accepted) {
      // The outcome is unknown (an error, or a lost answer): stop checking this post.
      if (answer === undefined || answer.status >= 500) this.forget(post)
      return
    }
    post.title = title
    post.etag = accepted.headers.get('etag') ?? undefined
  }

  async deletePost() {
    const post = this.pick()
    if (!post) return
    // Whatever the answer, the post is no longer expected to exist unchanged.
    this.forget(post)
    const answer = await this.request('post.delete', 'DELETE', `/posts/${post.id}`, { auth: true })
    this.accept('post.delete', answer, 204)
  }

  private forget(post: AcknowledgedPost) {
    this.posts.splice(this.posts.indexOf(post), 1)
    this.acknowledged.delete(post.id)
  }

  async me() {
    const answer = await this.request('me', 'GET', '/users/me', { auth: true })
    this.accept('me', answer, 200)
  }

  async signupOther() {
    const answer = await this.request('signup', 'POST', '/auth/signup', {
      json: { email: `soak-${randomUUID()}@example.com`, full_name: 'Soak Extra', password: PASSWORD }
    })
    this.accept('signup', answer, 201)
  }

  /** Requests the service must refuse with a 4xx. */
  async badRequest() {
    const cases: Array<() => Promise<Answer | undefined>> = [
      () => this.request('bad', 'POST', '/posts', { raw: { type: 'application/json', body: '{"title":' }, auth: true }),
      () => this.request('bad', 'POST', '/posts', { raw: { type: 'application/json', body: new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d]) }, auth: true }),
      () => this.request('bad', 'POST', '/posts', { json: { title: 't', content: 'c', extra: 1 }, auth: true }),
      () => this.request('bad', 'POST', '/posts', { raw: { type: 'text/plain', body: 'hello' }, auth: true }),
      () => this.request('bad', 'GET', '/users/me', { headers: { authorization: 'Bearer not.a.token' } }),
      () => this.request('bad', 'GET', `/posts/${randomUUID()}`),
      () => this.request('bad', 'GET', '/posts?limit=1000'),
      () => this.request('bad', 'POST', '/auth/token', { form: { grant_type: 'refresh_token', refresh_token: 'bapi_rt_nonsense' } })
    ]
    const answer = await cases[Math.floor(Math.random() * cases.length)]?.()
    if (answer && (answer.status < 400 || answer.status >= 500)) {
      this.stats.note(`bad: a bad request was answered ${answer.status}`)
    }
  }

  async step() {
    const roll = Math.random() * 100
    if (roll < 25) return this.createPost()
    if (roll < 45) return this.readPost()
    if (roll < 55) return this.listPosts()
    if (roll < 65) return this.updatePost()
    if (roll < 71) return this.deletePost()
    if (roll < 77) return this.me()
    if (roll < 83) return this.refresh()
    if (roll < 86) return this.login()
    if (roll < 88) return this.signupOther()
    return this.badRequest()
  }
}

/** Reads every acknowledged, not deleted post back; answers the ids lost or changed. */
async function verify(options: Options, acknowledged: Map<string, AcknowledgedPost>) {
  const lost: string[] = []
  const changed: string[] = []
  const queue = [...acknowledged.values()]
  const worker = async () => {
    for (let post = queue.pop(); post; post = queue.pop()) {
      const response = await fetch(`${options.base}/posts/${post.id}`)
      const body = (await response.json()) as { title?: string; content?: string }
      if (response.status === 404) lost.push(post.id)
      else if (response.status !== 200) lost.push(`${post.id} (${response.status})`)
      else if (body.title !== post.title || body.content !== post.content) changed.push(post.id)
    }
  }
  await Promise.all(Array.from({ length: options.clients }, worker))
  return { checked: acknowledged.size, lost, changed }
}

function percentile(sorted: number[], p: number) {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0
}

/** The report as data, for --json. */
function summary(stats: Stats, seconds: number, options: Options, check: Awaited<ReturnType<typeof verify>>, failed: boolean) {
  const operations = Object.fromEntries(
    [...stats.latencies].map(([operation, list]) => {
      const sorted = [...list].sort((a, b) => a - b)
      return [
        operation,
        {
          count: list.length,
          p50: percentile(sorted, 50),
          p95: percentile(sorted, 95),
          p99: percentile(sorted, 99),
          statuses: Object.fromEntries(stats.statuses.get(operation) ?? [])
        }
      ]
    })
  )
  const requests = [...stats.latencies.values()].reduce((sum, list) => sum + list.length, 0)
  return {
    url: options.base,
    clients: options.clients,
    seconds,
    requests,
    operations,
    serverErrors: stats.serverErrors,
    networkErrors: stats.networkErrors,
    failures: stats.failures,
    checked: check.checked,
    lost: check.lost,
    changed: check.changed,
    unexpected: stats.unexpected,
    failed
  }
}

function report(stats: Stats, seconds: number, options: Options, check: Awaited<ReturnType<typeof verify>>) {
  const lines: string[] = []
  const total = [...stats.latencies.values()].reduce((sum, list) => sum + list.length, 0)
  const allStatuses = new Map<number, number>()
  for (const counts of stats.statuses.values()) for (const [status, n] of counts) allStatuses.set(status, (allStatuses.get(status) ?? 0) + n)
  lines.push(`Soak of ${options.base}: ${options.clients} clients for ${seconds.toFixed(1)} s`)
  lines.push(`Requests: ${total} (${(total / seconds).toFixed(1)}/s), network errors: ${stats.networkErrors}`)
  lines.push(`Statuses: ${[...allStatuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s === 0 ? 'network' : s}: ${n}`).join(', ')}`)
  lines.push('')
  lines.push(`${'operation'.padEnd(12)} ${'count'.padStart(7)}  ${'p50 ms'.padStart(8)} ${'p95 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'max ms'.padStart(8)}  statuses`)
  for (const [operation, list] of [...stats.latencies].sort(([a], [b]) => a.localeCompare(b))) {
    const sorted = [...list].sort((a, b) => a - b)
    const counts = [...(stats.statuses.get(operation) ?? [])].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(' ')
    lines.push(
      `${operation.padEnd(12)} ${String(list.length).padStart(7)}  ${[50, 95, 99].map((p) => percentile(sorted, p).toFixed(1).padStart(8)).join(' ')} ${(sorted.at(-1) ?? 0).toFixed(1).padStart(8)}  ${counts}`
    )
  }
  lines.push('')
  lines.push(`Acknowledged posts read back: ${check.checked}, lost: ${check.lost.length}, changed: ${check.changed.length}`)
  if (check.lost.length > 0) lines.push(`  lost: ${check.lost.slice(0, 20).join(', ')}`)
  if (check.changed.length > 0) lines.push(`  changed: ${check.changed.slice(0, 20).join(', ')}`)
  if (stats.unexpected.length > 0) {
    lines.push(`Unexpected answers (first ${stats.unexpected.length}):`)
    for (const message of stats.unexpected) lines.push(`  ${message}`)
  }
  // A soak whose writes were all refused (rate limits, say) proved nothing about them.
  const nothingChecked = check.checked === 0
  const failed = stats.serverErrors > 0 || stats.networkErrors > 0 || check.lost.length > 0 || check.changed.length > 0 || nothingChecked
  lines.push(
    failed
      ? `FAILED: ${stats.serverErrors} 5xx, ${stats.networkErrors} network errors, ${check.lost.length} lost, ${check.changed.length} changed` +
          (nothingChecked ? ', and no acknowledged post to read back (were the writes refused? see the statuses)' : '')
      : 'OK: no 5xx, no network errors, every acknowledged post intact'
  )
  return { text: lines.join('\n'), failed }
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '60' },
      url: { type: 'string', default: 'http://127.0.0.1:3000' },
      clients: { type: 'string', default: '8' },
      'allow-remote': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false }
    }
  })
  const seconds = Number(values.seconds)
  const clients = Number(values.clients)
  if (!(seconds > 0) || !Number.isInteger(clients) || clients < 1) {
    process.stderr.write('Usage: npm run soak -- --seconds N [--url http://127.0.0.1:3000] [--clients 8] [--allow-remote] [--json]\n')
    process.exit(2)
  }
  const url = new URL(values.url)
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)
  if (!loopback && !values['allow-remote']) {
    process.stderr.write(`Refusing to load ${url.host}, which is not a loopback address; pass --allow-remote if it is yours to load.\n`)
    process.exit(2)
  }
  return { base: url.origin, seconds, clients, json: values.json }
}

async function main() {
  const options = parseOptions()
  const stats = new Stats()
  const acknowledged = new Map<string, AcknowledgedPost>()
  const clients = Array.from({ length: options.clients }, () => new Client(options, stats, acknowledged))
  // With --json, standard output carries the JSON report alone.
  const say = (text: string) => (options.json ? process.stderr : process.stdout).write(text)
  say(`Soak: ${options.clients} clients against ${options.base} for ${options.seconds} s\n`)
  try {
    await Promise.all(clients.map((client) => client.start()))
  } catch (error) {
    process.stderr.write(`Could not start the clients: ${(error as Error).message}\n`)
    process.exit(1)
  }

  const started = performance.now()
  const deadline = started + options.seconds * 1000
  let nextProgress = started + 30_000
  await Promise.all(
    clients.map(async (client) => {
      while (performance.now() < deadline) {
        await client.step()
        if (performance.now() > nextProgress) {
          nextProgress += 30_000
          const total = [...stats.latencies.values()].reduce((sum, list) => sum + list.length, 0)
          say(`  ${((performance.now() - started) / 1000).toFixed(0)} s: ${total} requests, ${stats.serverErrors} 5xx\n`)
        }
      }
    })
  )
  const elapsed = (performance.now() - started) / 1000
  const check = await verify(options, acknowledged)
  const { text, failed } = report(stats, elapsed, options, check)
  say(`\n${text}\n`)
  if (options.json) process.stdout.write(`${JSON.stringify(summary(stats, elapsed, options, check, failed))}\n`)
  process.exit(failed ? 1 : 0)
}

await main()
