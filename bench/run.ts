// `npm run bench`: measures the service against a bare Fastify ceiling, an
// Express + jsonwebtoken + Prisma peer and the argon2 bound, and writes the
// results into BENCHMARKS.md (between its result markers).
//
// Every server runs as its own process on 127.0.0.1, and every load run is an
// autocannon process of its own. The machine is shared and noisy, so the
// numbers that matter are ratios taken in the same run: the cases compared
// with each other are interleaved and repeated, and each ratio is the median
// of the per-round ratios. The load average is recorded at start and end.
//
//   npm run bench               full run (about 6 minutes), rewrites BENCHMARKS.md
//   npm run bench -- --quick    a short sanity run; prints the tables, writes nothing
//   npm run bench -- --out FILE write the results into FILE instead
//   npm run bench -- --only anonymous,authenticated   some cases only (see `specs`,
//                               and bound, flood, hostile, memory); prints, writes nothing
//   npm run bench -- --profile  also write a CPU profile of the service (.data/bench-profiles)
//   npm run bench -- --only memory --soak 1800   the memory run alone, for 30 minutes
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startEmbeddedPostgres } from '../src/db/embedded.js'
import { applyMigrations } from '../src/db/migrations.js'
import type { LoadResult, LoadSpec } from './load.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)
const quick = args.includes('--quick')
/** `--profile`: the service runs with --cpu-prof; the profile lands in .data/bench-profiles. */
const profileDir = args.includes('--profile') ? path.join(root, '.data', 'bench-profiles') : undefined
const onlyIndex = args.indexOf('--only')
/** `--only a,b`: run just these cases (for profiling); nothing is written. */
const only = onlyIndex >= 0 ? new Set((args[onlyIndex + 1] ?? '').split(',')) : undefined
const wanted = (name: string) => !only || only.has(name)
const soakIndex = args.indexOf('--soak')
/** `--soak N`: seconds of the mixed memory run. */
const soakSeconds = soakIndex >= 0 ? Number(args[soakIndex + 1]) : undefined
const outIndex = args.indexOf('--out')
const outFile =
  outIndex >= 0 ? path.resolve(args[outIndex + 1] ?? '') : quick || only ? undefined : path.join(root, 'BENCHMARKS.md')

// The compared cases run in short, alternating rounds: the machine's load
// drifts over seconds to minutes, so short alternation pairs like with like.
const plan = quick
  ? { duration: 3, warmup: 1, rounds: 1, roundDuration: 3, soak: 20 }
  : { duration: 10, warmup: 2, rounds: 5, roundDuration: 6, soak: 90 }
if (soakSeconds !== undefined && soakSeconds > 0) plan.soak = soakSeconds
const READ_CONNECTIONS = 50
const LOGIN_CONNECTIONS = 8
const BYSTANDER_CONNECTIONS = 10
const HOSTILE_CONNECTIONS = 20
/** Unknown properties in the hostile body: as many as fit under the posts' 256 KiB body limit. */
const HOSTILE_PROPERTIES = 15_000
const REFRESH_CONNECTIONS = 10
/** Sessions logged in before the run: the refresh grant's pool of tokens. */
const REFRESH_SESSIONS = 3 * REFRESH_CONNECTIONS
const PASSWORD = 'correct horse battery staple'
const EMAIL = 'bench@example.com'

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`)

/** A valid post padded with unknown properties: the most work a body can ask of the validator. */
function hostileBody(): string {
  const padding = Object.fromEntries(Array.from({ length: HOSTILE_PROPERTIES }, (_, i) => [`p${i}`, i]))
  return JSON.stringify({ title: 'Hostile', content: 'Hostile', ...padding })
}

// ---------------------------------------------------------------- processes

const children = new Set<ChildProcess>()

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

/** Starts a TypeScript entry point with tsx, as its own process. */
function startProcess(name: string, file: string, env: Record<string, string>, nodeArgs: string[] = []): ChildProcess {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', file], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe']
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000)
  })
  child.once('exit', (code, signal) => {
    children.delete(child)
    if (!stopping) log(`${name} exited early (code ${code}, signal ${signal}):\n${stderr}`)
  })
  children.add(child)
  return child
}

async function waitForHttp(url: string, init: RequestInit = {}, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, init)
      await response.arrayBuffer()
      if (response.status < 500) return
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  throw new Error(`${url} did not answer within ${timeoutMs / 1000} s`)
}

/** Runs one autocannon load in a process of its own; resolves with its result. */
async function load(spec: LoadSpec): Promise<LoadResult> {
  // In a file: a large body would not fit in an argument (E2BIG).
  const specFile = path.join(os.tmpdir(), `bench-load-${process.pid}-${randomBytes(6).toString('hex')}.json`)
  writeFileSync(specFile, JSON.stringify(spec))
  let output: string
  try {
    output = await runNode('bench/load.ts', [specFile])
  } finally {
    rmSync(specFile, { force: true })
  }
  const line = output.split('\n').pop()
  if (!line) throw new Error('load run printed no result')
  return JSON.parse(line) as LoadResult
}

function runNode(file: string, argv: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, file), ...argv], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    children.add(child)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.once('exit', (code) => {
      children.delete(child)
      if (code === 0) resolve(stdout.trim())
      else reject(new Error(`${file} failed (${code}): ${stderr}`))
    })
  })
}

/** Resident set size of a process, in MiB, from /proc (Linux). */
function rssMiB(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1]
    return kb ? Number(kb) / 1024 : undefined
  } catch {
    return undefined
  }
}

/** The processes a process started (its children), from /proc (Linux). */
function childrenOf(pid: number): number[] {
  const children: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      // "pid (comm) state ppid ...": comm may hold spaces, so read after its ")".
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) children.push(Number(entry))
    } catch {
      // exited meanwhile
    }
  }
  return children
}

let stopping = false
async function stopAll() {
  stopping = true
  await Promise.all(
    [...children].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve()
          const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
          child.once('exit', () => {
            clearTimeout(timer)
            resolve()
          })
          child.kill('SIGTERM')
        })
    )
  )
}

// ---------------------------------------------------------------- helpers

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? (sorted[middle] ?? NaN) : ((sorted[middle - 1] ?? NaN) + (sorted[middle] ?? NaN)) / 2
}
const fixed = (value: number, digits = 0) => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a')
/** Requests per second: whole numbers, but a decimal for slow cases such as logins. */
const rate = (value: number) => fixed(value, value < 100 ? 1 : 0)
const percent = (value: number) => `${fixed(value * 100)} %`
const loadavg = () => os.loadavg().map((value) => value.toFixed(2)).join(' / ')

async function json<T>(response: Promise<Response>): Promise<T> {
  const answer = await response
  const body = (await answer.json()) as T
  if (!answer.ok) throw new Error(`${answer.url}: ${answer.status} ${JSON.stringify(body)}`)
  return body
}

// ---------------------------------------------------------------- the run

interface Measured {
  name: string
  label: string
  runs: LoadResult[]
}

async function main() {
  const startedAt = new Date()
  const loadStart = loadavg()
  const clock = performance.now()
  log(`${quick ? 'quick' : 'full'} run; load average ${loadStart}`)

  const database = await startEmbeddedPostgres({ dataDir: '', persistent: false })
  await applyMigrations(database.url)
  const [appPort, uncachedPort, guardedPort, ceilingPort, peerPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()]
  const secret = randomBytes(48).toString('base64url')
  const jwtEnv = { JWT_ALGORITHM: 'HS256', JWT_SECRET: secret, JWT_ISSUER: 'http://localhost:3000', JWT_AUDIENCE: 'blog-api' }

  const serviceEnv = {
    ...jwtEnv,
    DATABASE_URL: database.url,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    MIGRATE_ON_START: 'false',
    APP_SECRET: randomBytes(48).toString('base64url'),
    MFA_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    // The cases measure no email (a signup would queue one).
    MAIL_DISABLED: 'true'
  }
  // The login cases measure hashing, not the per-address rate limit, nor the
  // per-account lockout (which counts logins in flight for one account); the
  // write cases measure writing, not the per-account write limit.
  const unlimited = { AUTH_RATE_LIMIT_MAX: '1000000000', LOGIN_LOCKOUT_THRESHOLD: '100', WRITE_RATE_LIMIT_MAX: '1000000000' }
  const appProcess = startProcess('the service', 'src/server.ts', { ...serviceEnv, ...unlimited, PORT: String(appPort) },
    profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])
  // A second instance on the same database with the post cache off: every
  // read is a database round trip, as in the peer.
  startProcess('the service without its post cache', 'src/server.ts', { ...serviceEnv, ...unlimited, PORT: String(uncachedPort), POST_CACHE_MB: '0' })
  // A third with every limit at its default, for the attack cases.
  startProcess('the service at its default limits', 'src/server.ts', { ...serviceEnv, PORT: String(guardedPort) })
  startProcess('the ceiling', 'bench/ceiling.ts', { PORT: String(ceilingPort) })
  startProcess('the peer', 'bench/peer/server.ts', { ...jwtEnv, DATABASE_URL: database.url, PORT: String(peerPort) })

  try {
    const app = `http://127.0.0.1:${appPort}`
    const uncached = `http://127.0.0.1:${uncachedPort}`
    const guarded = `http://127.0.0.1:${guardedPort}`
    const ceiling = `http://127.0.0.1:${ceilingPort}`
    const peer = `http://127.0.0.1:${peerPort}`
    await Promise.all([
      waitForHttp(`${app}/health`),
      waitForHttp(`${uncached}/health`),
      waitForHttp(`${guarded}/health`),
      waitForHttp(`${ceiling}/`),
      waitForHttp(`${peer}/posts/none`)
    ])
    log(`servers up after ${fixed((performance.now() - clock) / 1000, 1)} s`)

    // One account, a session per read connection, and enough posts for a page.
    const form = { 'content-type': 'application/x-www-form-urlencoded' }
    const loginBody = new URLSearchParams({ grant_type: 'password', username: EMAIL, password: PASSWORD }).toString()
    await json(
      fetch(`${app}/auth/signup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: EMAIL, full_name: 'Bench Mark', password: PASSWORD })
      })
    )
    const sessions: { access_token: string; refresh_token: string }[] = []
    for (let batch = 0; batch < REFRESH_SESSIONS; batch += 4) {
      const logins = Array.from({ length: Math.min(4, REFRESH_SESSIONS - batch) }, () =>
        json<{ access_token: string; refresh_token: string }>(fetch(`${app}/auth/token`, { method: 'POST', headers: form, body: loginBody }))
      )
      sessions.push(...(await Promise.all(logins)))
    }
    // Every connection sends the same token: a per-connection token would make
    // autocannon rebuild each request, and the load generator, which shares
    // the two cores, would then cost more for the authenticated cases than for
    // the anonymous ones. The service's cost per request is the same either
    // way (each token is verified once, then served from the verifier's cache).
    const bearer = { authorization: `Bearer ${sessions[0]?.access_token ?? ''}` }
    const auth = { ...bearer, 'content-type': 'application/json' }
    let postId = ''
    for (let i = 0; i < 40; i++) {
      const post = await json<{ id: string }>(
        fetch(`${app}/posts`, {
          method: 'POST',
          headers: auth,
          body: JSON.stringify({ title: `Post ${i}`, content: 'A short post of the kind a blog serves. '.repeat(10) })
        })
      )
      postId ||= post.id
    }
    // The peer answers the same JSON for the same post.
    const [ours, theirs] = await Promise.all([
      json<unknown>(fetch(`${app}/posts/${postId}`, { headers: auth })),
      json<unknown>(fetch(`${peer}/posts/${postId}`, { headers: auth }))
    ])
    if (JSON.stringify(ours) !== JSON.stringify(theirs)) {
      throw new Error(`the peer answers differently:\n${JSON.stringify(ours)}\n${JSON.stringify(theirs)}`)
    }
    log(`seeded after ${fixed((performance.now() - clock) / 1000, 1)} s`)

    const base = { connections: READ_CONNECTIONS, duration: plan.duration, warmup: plan.warmup }
    const specs: Record<string, { label: string; spec: LoadSpec }> = {
      ceiling: { label: 'Ceiling: bare Fastify, small JSON', spec: { ...base, url: `${ceiling}/` } },
      anonymous: { label: '`GET /posts/{id}` without a token', spec: { ...base, url: `${app}/posts/${postId}` } },
      authenticated: { label: '`GET /posts/{id}` with a bearer token', spec: { ...base, url: `${app}/posts/${postId}`, headers: bearer } },
      uncached: {
        label: '`GET /posts/{id}` with a bearer token, post cache off (`POST_CACHE_MB=0`)',
        spec: { ...base, url: `${uncached}/posts/${postId}`, headers: bearer }
      },
      peer: { label: 'Peer: Express 5 + jsonwebtoken + Prisma, `GET /posts/{id}` with a bearer token', spec: { ...base, url: `${peer}/posts/${postId}`, headers: bearer } },
      me: { label: '`GET /users/me`', spec: { ...base, url: `${app}/users/me`, headers: bearer } },
      list: { label: '`GET /posts?limit=20`', spec: { ...base, url: `${app}/posts?limit=20` } },
      create: {
        label: '`POST /posts`',
        spec: {
          ...base,
          url: `${app}/posts`,
          method: 'POST',
          headers: auth,
          body: JSON.stringify({ title: 'Benchmark', content: 'Written under load.' })
        }
      },
      bystander: {
        label: `\`GET /posts?limit=20\`, a bystander at the default limits (${BYSTANDER_CONNECTIONS} connections)`,
        spec: { ...base, connections: BYSTANDER_CONNECTIONS, url: `${guarded}/posts?limit=20` }
      },
      hostile: {
        label: `\`POST /posts\` with ${HOSTILE_PROPERTIES.toLocaleString('en')} unknown properties from one account (${HOSTILE_CONNECTIONS} connections)`,
        spec: { ...base, connections: HOSTILE_CONNECTIONS, url: `${guarded}/posts`, method: 'POST', headers: auth, body: hostileBody() }
      },
      hostileUnlimited: {
        label: 'the same with the write limit off (the cost of the bodies themselves)',
        spec: { ...base, connections: HOSTILE_CONNECTIONS, url: `${app}/posts`, method: 'POST', headers: auth, body: hostileBody() }
      },
      password: {
        label: `\`POST /auth/token\`, password grant (${LOGIN_CONNECTIONS} connections)`,
        // No separate warm-up run (the seeding logins warmed the hashing
        // process): the requests a warm-up leaves in flight when it stops
        // would still be hashed, taking the first second of the measured run.
        spec: { ...base, connections: LOGIN_CONNECTIONS, url: `${app}/auth/token`, method: 'POST', headers: form, body: loginBody }
      },
      refresh: {
        label: `\`POST /auth/token\`, refresh grant (${REFRESH_CONNECTIONS} connections)`,
        spec: {
          ...base,
          url: `${app}/auth/token`,
          method: 'POST',
          headers: form,
          warmup: 0,
          connections: REFRESH_CONNECTIONS,
          refreshTokens: sessions.map((session) => session.refresh_token)
        }
      }
    }

    const measured = new Map<string, Measured>()
    const record = (name: string, result: LoadResult) => {
      const entry = measured.get(name) ?? { name, label: specs[name]?.label ?? name, runs: [] }
      entry.runs.push(result)
      measured.set(name, entry)
      log(`${name}: ${fixed(result.rps)} req/s, p50 ${result.p50} ms, p99 ${result.p99} ms, non-2xx ${result.non2xx}, errors ${result.errors}, statuses ${JSON.stringify(result.statuses)}`)
    }
    const measure = async (name: string) => {
      const entry = specs[name]
      if (!entry) throw new Error(`no case ${name}`)
      record(name, await load(entry.spec))
    }

    // The compared cases, interleaved: each round in a different order.
    const compared = ['ceiling', 'anonymous', 'authenticated', 'uncached', 'peer'].filter(wanted)
    for (let round = 0; round < plan.rounds; round++) {
      const order = compared.map((_, i) => compared[(i + round) % compared.length] ?? '')
      for (const name of order) {
        const entry = specs[name]
        if (entry) record(name, await load({ ...entry.spec, duration: plan.roundDuration, warmup: 1 }))
      }
    }
    for (const name of ['me', 'list', 'create'].filter(wanted)) await measure(name)

    // Logins against the hashing bound, alternating too: the bound with as
    // many verifications in flight as the thread pool runs, and with only as
    // many as the service lets run at once (ARGON2_CONCURRENCY's default),
    // to tell what that limit costs here. Each in a process of its own, with
    // the servers idle.
    const bounds: Bound[] = []
    const turnBounds: Bound[] = []
    const boundRun = async (inFlight?: number) => {
      const argv = [String(plan.duration), ...(inFlight ? [String(inFlight)] : [])]
      const result = JSON.parse(await runNode('bench/argon2-bound.ts', argv)) as Bound
      log(`argon2 bound: ${fixed(result.perSecond, 1)} verifications/s, ${result.inFlight} in flight`)
      return result
    }
    for (let round = 0; round < Math.min(plan.rounds, 3); round++) {
      if (wanted('password')) await measure('password')
      if (wanted('bound')) {
        const pool = await boundRun()
        bounds.push(pool)
        turnBounds.push(await boundRun(os.availableParallelism()))
      }
    }
    const summarize = (runs: Bound[]): Bound => ({
      ...(runs[0] ?? { threadpool: NaN, inFlight: NaN, memoryKiB: NaN, timeCost: NaN, parallelism: NaN, nice: NaN, idle: false }),
      perSecond: median(runs.map((run) => run.perSecond))
    })
    const bound = summarize(bounds)
    const turnBound = summarize(turnBounds)

    // Logins flooding in while authenticated reads go on.
    if (wanted('flood')) {
      const [floodReads, floodLogins] = await Promise.all([
        load(specs.authenticated!.spec),
        load(specs.password!.spec)
      ])
      record('floodReads', floodReads)
      record('floodLogins', floodLogins)
    }

    if (wanted('refresh')) await measure('refresh')

    // The worst body a client can send (the largest route limit, filled with
    // unknown properties) arriving from many connections, while a bystander
    // lists posts: its p99 against its p99 alone, alternating.
    if (wanted('hostile')) {
      for (let round = 0; round < Math.min(plan.rounds, 3); round++) {
        record('bystander', await load(specs.bystander!.spec))
        const [underAttack, attack] = await Promise.all([load(specs.bystander!.spec), load(specs.hostile!.spec)])
        record('bystanderUnderAttack', underAttack)
        record('hostile', attack)
      }
      // What each such body costs when nothing stops it early: the rate at which one instance refuses them.
      record('hostileUnlimited', await load(specs.hostileUnlimited!.spec))
    }

    // Memory over a longer mixed run: reads, writes and logins at once.
    const pid = appProcess.pid ?? 0
    const samples: MemorySample[] = []
    const soakStart = performance.now()
    const sampler = setInterval(() => {
      const rss = rssMiB(pid)
      // The service's own processes (a password-hashing child, if any) count too.
      const children = childrenOf(pid).reduce((sum, child) => sum + (rssMiB(child) ?? 0), 0)
      if (rss !== undefined) samples.push({ at: (performance.now() - soakStart) / 1000, rss, children })
    }, 1000)
    const soakBase = { duration: plan.soak, warmup: 0 }
    if (wanted('memory')) {
      await Promise.all([
        load({ ...specs.authenticated!.spec, ...soakBase, connections: 20 }),
        load({ ...specs.create!.spec, ...soakBase, connections: 5 }),
        load({ ...specs.password!.spec, ...soakBase, connections: 4 })
      ])
    }
    clearInterval(sampler)
    log(`memory: ${samples.length} samples`)

    const loadEnd = loadavg()
    const elapsed = (performance.now() - clock) / 1000
    const report = renderReport({ measured, bound, turnBound, bounds, turnBounds, samples, startedAt, loadStart, loadEnd, elapsed })
    process.stdout.write(report + '\n')
    if (outFile) {
      writeResults(outFile, report)
      log(`wrote ${path.relative(process.cwd(), outFile) || outFile}`)
    }
  } finally {
    await stopAll()
    await database.stop()
  }
}

// ---------------------------------------------------------------- the report

interface MemorySample {
  /** Seconds since the memory run started. */
  at: number
  /** The service process's RSS, MiB. */
  rss: number
  /** The RSS of its child processes, MiB. */
  children: number
}

/** Least-squares slope of RSS over time, in MiB per minute. */
function slopePerMinute(samples: MemorySample[], value: (sample: MemorySample) => number): number {
  const n = samples.length
  if (n < 2) return NaN
  const meanT = samples.reduce((sum, s) => sum + s.at, 0) / n
  const meanV = samples.reduce((sum, s) => sum + value(s), 0) / n
  let num = 0
  let den = 0
  for (const sample of samples) {
    num += (sample.at - meanT) * (value(sample) - meanV)
    den += (sample.at - meanT) ** 2
  }
  return (num / den) * 60
}

interface Bound {
  perSecond: number
  threadpool: number
  inFlight: number
  memoryKiB: number
  timeCost: number
  parallelism: number
  /** The nice value it ran at (the service's hashing process runs at ARGON2_NICE). */
  nice: number
  /** Whether it ran under SCHED_IDLE (as the service's hashing process does by default). */
  idle: boolean
}

interface ReportInput {
  measured: Map<string, Measured>
  bound: Bound
  turnBound: Bound
  bounds: Bound[]
  turnBounds: Bound[]
  samples: MemorySample[]
  startedAt: Date
  loadStart: string
  loadEnd: string
  elapsed: number
}

function renderReport({ measured, bound, turnBound, bounds, turnBounds, samples, startedAt, loadStart, loadEnd, elapsed }: ReportInput): string {
  const runs = (name: string) => measured.get(name)?.runs ?? []
  const rps = (name: string) => median(runs(name).map((run) => run.rps))
  const p99 = (name: string) => median(runs(name).map((run) => run.p99))
  /** The median over rounds of a per-round ratio of logins to a hashing bound. */
  const ratioTo = (top: string, bottom: Bound[]) => median(runs(top).map((run, i) => run.rps / (bottom[i]?.perSecond ?? NaN)))
  /** The median over rounds of a per-round ratio of two interleaved cases. */
  const ratio = (top: string, bottom: string) => {
    const a = runs(top)
    const b = runs(bottom)
    return median(a.map((run, i) => run.rps / (b[i]?.rps ?? NaN)))
  }

  const rows = [...measured.values()]
    .filter((entry) => !entry.name.startsWith('flood') && !['bystanderUnderAttack', 'hostile', 'hostileUnlimited'].includes(entry.name))
    .map((entry) => {
      const r = entry.runs
      const ceilingShare = rps(entry.name) / rps('ceiling')
      return `| ${entry.label} | ${rate(rps(entry.name))} | ${fixed(median(r.map((x) => x.p50)), 1)} | ${fixed(median(r.map((x) => x.p99)), 1)} | ${percent(ceilingShare)} | ${r.length} | ${r.reduce((sum, x) => sum + x.non2xx + x.errors, 0)} |`
    })

  const authOverAnon = ratio('authenticated', 'anonymous')
  const anonOverCeiling = ratio('anonymous', 'ceiling')
  const authOverCeiling = ratio('authenticated', 'ceiling')
  const authOverPeer = ratio('authenticated', 'peer')
  const uncachedOverPeer = ratio('uncached', 'peer')
  const authP99 = p99('authenticated')
  const loginShare = ratioTo('password', bounds)
  const turnShare = ratioTo('password', turnBounds)
  const floodP99 = p99('floodReads')
  const floodFactor = floodP99 / authP99
  const bystanderP99 = p99('bystander')
  const attackedP99 = p99('bystanderUnderAttack')
  const attackFactor = median(runs('bystanderUnderAttack').map((run, i) => run.p99 / (runs('bystander')[i]?.p99 ?? NaN)))
  const hostileRuns = runs('hostile')
  const unlimitedRun = runs('hostileUnlimited')[0]
  const statuses = (list: LoadResult[]) =>
    Object.entries(
      list.reduce<Record<string, number>>((sum, run) => {
        for (const [code, count] of Object.entries(run.statuses)) sum[code] = (sum[code] ?? 0) + count
        return sum
      }, {})
    )
      .map(([code, count]) => `${count} × ${code}`)
      .join(', ')

  // After a warm-up (the first quarter), the mean of the first and of the
  // last tenth of the samples, and the trend over all of them.
  const total = (sample: MemorySample) => sample.rss + sample.children
  const warm = samples.filter((sample) => sample.at >= plan.soak * 0.25)
  const window = Math.max(5, Math.round(warm.length / 10))
  const first = warm.slice(0, window)
  const last = warm.slice(-window)
  const mean = (values: MemorySample[], value = total) => values.reduce((sum, v) => sum + value(v), 0) / Math.max(values.length, 1)
  const growth = mean(last) - mean(first)
  const growthShare = growth / mean(first)
  const own = (sample: MemorySample) => sample.rss
  const kids = (sample: MemorySample) => sample.children
  const peak = Math.max(...samples.map(total))

  const met = (ok: boolean) => (ok ? 'met' : '**not met**')
  const targets = [
    `| Authenticated \`GET /posts/{id}\` ÷ the same without a token | ≥ 90 % | ${percent(authOverAnon)} | ${met(authOverAnon >= 0.9)} |`,
    `| \`GET /posts/{id}\` ÷ bare Fastify ceiling (without / with a token) | ≥ 40 % | ${percent(anonOverCeiling)} / ${percent(authOverCeiling)} | ${met(authOverCeiling >= 0.4)} |`,
    `| Authenticated \`GET /posts/{id}\` ÷ Express peer | ≥ 1.5× | ${fixed(authOverPeer, 2)}× | ${met(authOverPeer >= 1.5)} |`,
    `| (for reference) the same with the post cache off ÷ Express peer | | ${fixed(uncachedOverPeer, 2)}× | |`,
    `| p99 of authenticated reads, ${READ_CONNECTIONS} connections | < 20 ms | ${fixed(authP99, 1)} ms | ${met(authP99 < 20)} |`,
    `| Password grant ÷ raw argon2 bound (${bound.inFlight} in flight) | ≥ 90 % | ${percent(loginShare)} | ${met(loginShare >= 0.9)} |`,
    `| (for reference) password grant ÷ argon2 with the service's ${turnBound.inFlight} hash(es) at once | | ${percent(turnShare)} | |`,
    `| Authenticated reads' p99 while logins flood in ÷ unloaded p99 | ≤ 2× | ${fixed(floodP99, 1)} ÷ ${fixed(authP99, 1)} ms = ${fixed(floodFactor, 2)}× | ${met(floodFactor <= 2)} |`,
    `| A bystander's p99 while ${HOSTILE_CONNECTIONS} connections send ${HOSTILE_PROPERTIES.toLocaleString('en')}-property bodies ÷ its p99 alone | ≤ 2× | ${fixed(attackedP99, 1)} ÷ ${fixed(bystanderP99, 1)} ms = ${fixed(attackFactor, 2)}× | ${met(attackFactor <= 2)} |`,
    `| RSS growth after warm-up over a ${plan.soak} s mixed run | flat (< 5 %) | ${fixed(growth, 1)} MiB (${percent(growthShare)}); trend ${fixed(slopePerMinute(warm, total), 2)} MiB/min | ${met(growthShare < 0.05)} |`
  ]

  let commit = 'unknown'
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim()
  } catch {
    // not a git checkout
  }
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU'
  const floodLogins = runs('floodLogins')[0]

  return [
    `Run of ${startedAt.toISOString()} (${quick ? 'quick' : 'full'}, ${fixed(elapsed)} s), commit \`${commit}\`, Node ${process.version}, ${os.cpus().length} × ${cpu}.`,
    `Load average (1 / 5 / 15 min) at start: ${loadStart}; at end: ${loadEnd}.`,
    `Each case: ${plan.warmup} s warm-up, then ${plan.duration} s measured, autocannon in its own process; ${READ_CONNECTIONS} connections unless noted.`,
    `The ceiling, both \`GET /posts/{id}\` cases and the peer ran interleaved in ${plan.rounds} round(s) of 1 s warm-up and ${plan.roundDuration} s measured each; the table shows medians, ratios are medians of per-round ratios. The password grant and the argon2 bounds alternate the same way (${Math.min(plan.rounds, 3)} round(s)).`,
    `Tokens: HS256 (the one family jsonwebtoken and the service share), the same token on every connection. UV_THREADPOOL_SIZE: ${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}.`,
    '',
    '### Throughput and latency',
    '',
    '| case | requests/s | p50 ms | p99 ms | of ceiling | runs | non-2xx |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows,
    ...[bound, turnBound].map(
      (b) =>
        `| Raw argon2id verifications (m=${b.memoryKiB} KiB, t=${b.timeCost}, p=${b.parallelism}, nice ${b.nice}${b.idle ? ', SCHED_IDLE' : ''}), ${b.inFlight} in flight | ${fixed(b.perSecond, 1)} | | | | ${bounds.length} | |`
    ),
    `| Authenticated \`GET /posts/{id}\` while logins flood in | ${fixed(rps('floodReads'))} | ${fixed(median(runs('floodReads').map((x) => x.p50)), 1)} | ${fixed(floodP99, 1)} | | 1 | |`,
    `| Password grant during that flood | ${fixed(floodLogins?.rps ?? NaN, 1)} | ${fixed(floodLogins?.p50 ?? NaN, 1)} | ${fixed(floodLogins?.p99 ?? NaN, 1)} | | 1 | |`,
    `| The bystander while hostile bodies arrive | ${fixed(rps('bystanderUnderAttack'))} | ${fixed(median(runs('bystanderUnderAttack').map((x) => x.p50)), 1)} | ${fixed(attackedP99, 1)} | | ${runs('bystanderUnderAttack').length} | |`,
    `| ${measured.get('hostile')?.label ?? 'hostile'}: ${statuses(hostileRuns)} | ${fixed(median(hostileRuns.map((x) => x.requests / plan.duration)))} | ${fixed(median(hostileRuns.map((x) => x.p50)), 1)} | ${fixed(p99('hostile'), 1)} | | ${hostileRuns.length} | |`,
    `| The same bodies with the write limit off, all answered 400: ${fixed(unlimitedRun ? (1000 / (unlimitedRun.requests / plan.duration)) * os.availableParallelism() : NaN, 1)} ms of CPU each at most | ${fixed(unlimitedRun ? unlimitedRun.requests / plan.duration : NaN)} | ${fixed(unlimitedRun?.p50 ?? NaN, 1)} | ${fixed(unlimitedRun?.p99 ?? NaN, 1)} | | 1 | |`,
    '',
    '### Targets',
    '',
    '| target | wanted | measured | |',
    '|---|---|---|---|',
    ...targets,
    '',
    `Memory: RSS of the service and its child processes, sampled each second over ${plan.soak} s of mixed load (20 connections reading, 5 writing posts, 4 logging in): ` +
      `${fixed(samples[0] ? total(samples[0]) : NaN, 1)} MiB at the start, ${fixed(mean(first), 1)} MiB after warm-up (the first quarter), ` +
      `${fixed(mean(last), 1)} MiB at the end (means of the first and last ${window} samples after warm-up), peak ${fixed(peak, 1)} MiB. ` +
      `The service process alone: ${fixed(mean(first, own), 1)} → ${fixed(mean(last, own), 1)} MiB, trend ${fixed(slopePerMinute(warm, own), 2)} MiB/min; ` +
      `its child processes: ${fixed(mean(first, kids), 1)} → ${fixed(mean(last, kids), 1)} MiB, trend ${fixed(slopePerMinute(warm, kids), 2)} MiB/min.`
  ].join('\n')
}

const START = '<!-- bench:results:start -->'
const END = '<!-- bench:results:end -->'

/** Replaces the generated part of the file, keeping what is written around it. */
function writeResults(file: string, report: string) {
  const block = `${START}\n${report}\n${END}`
  if (!existsSync(file)) {
    writeFileSync(file, `# Benchmarks\n\n## Latest run\n\n${block}\n`)
    return
  }
  const text = readFileSync(file, 'utf8')
  const start = text.indexOf(START)
  const end = text.indexOf(END)
  writeFileSync(file, start >= 0 && end > start ? text.slice(0, start) + block + text.slice(end + END.length) : `${text.trimEnd()}\n\n${block}\n`)
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void stopAll().finally(() => process.exit(130))
  })
}

try {
  await main()
} catch (error) {
  const cause = (error as Error).cause
  log(`failed: ${(error as Error).stack ?? String(error)}${cause instanceof Error ? `\n  caused by: ${cause.message}` : ''}`)
  process.exitCode = 1
}
