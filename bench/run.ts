// `npm run bench`: measures the service against what the machine allows, and
// writes the results into BENCHMARKS.md (between its result markers):
//
// - the bare Fastify ceiling (bench/ceiling.ts) for the cached read, and the
//   Express + jsonwebtoken + Prisma peer (bench/peer/server.ts);
// - the bound (bench/bound/server.ts): node:http and pg with prepared
//   statements answering the database routes with the same SQL, for the cold
//   read, /users/me, the post list and post creation, and as the yardstick of
//   the client-credentials and refresh grants;
// - the cost of request logging (the service at LOG_LEVEL=info, logging to a
//   file, against the same at silent);
// - the argon2 bound for logins, reads during a login flood, a bystander's
//   reads while the worst bodies a client can send arrive, memory over a
//   mixed run;
// - a million rows (bench/million.ts): first pages against the same at a few
//   dozen rows, page 2,000 against page 1, memory during deep walks;
// - the several-instance topology (test/topology/run.ts): PgBouncer, two
//   instances behind nginx, Redis, a soak with one instance killed.
//
// Every server runs as its own process on 127.0.0.1, and every load run is an
// autocannon process of its own. The machine is shared and noisy, so the
// numbers that matter are ratios taken in the same run: the cases compared
// with each other run next to each other in short rounds, in a different
// order each round, and each ratio is the median of the per-round ratios.
//
//   npm run bench               full run (about 20 minutes), rewrites BENCHMARKS.md
//   npm run bench -- --quick    a short sanity run; prints the tables, writes nothing
//   npm run bench -- --out FILE write the results into FILE instead
//   npm run bench -- --only cold,boundRead   some cases or phases only (see `blocks`,
//                               and password, bound, flood, hostile, memory, million, topology); prints
//   npm run bench -- --profile  CPU profiles of the service processes, cut per case
//                               (.data/bench-profiles/<run>/<case>.md)
//   npm run bench -- --rounds 3 rounds of the compared cases (default 5)
//   npm run bench -- --only memory --soak 1800   the memory run alone, for 30 minutes
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { startEmbeddedPostgres } from '../src/db/embedded.js'
import { applyMigrations, databaseUrlFor } from '../src/db/migrations.js'
import {
  cpuMs,
  fixed,
  freePort,
  json,
  load,
  loadavg,
  log,
  median,
  memoryGrowth,
  type MemorySample,
  met,
  percent,
  rate,
  root,
  runNode,
  sampleMemory,
  type Server,
  startServer,
  stopAll,
  waitForHttp
} from './harness.js'
import type { LoadResult, LoadSpec } from './load.js'
import { count, deepCursor, DOZENS, fill, listCases, MILLION, PAGES_DEEP, withLimit } from './million.js'
import { render as renderProfile, summarize } from './profile.js'

const args = process.argv.slice(2)
const option = (name: string) => {
  const index = args.indexOf(name)
  return index >= 0 ? args[index + 1] : undefined
}
const quick = args.includes('--quick')
const stamp = new Date().toISOString().replace(/[:.]/g, '-')
/** `--profile`: each service process runs with --cpu-prof; the profiles are cut per case. */
const profileRoot = args.includes('--profile') ? path.join(root, '.data', 'bench-profiles', stamp) : undefined
/** `--only a,b`: run just these cases and phases; nothing is written. */
const only = option('--only') === undefined ? undefined : new Set((option('--only') ?? '').split(','))
const wanted = (name: string) => !only || only.has(name)
const outFile = option('--out') !== undefined ? path.resolve(option('--out') ?? '') : quick || only ? undefined : path.join(root, 'BENCHMARKS.md')

const plan = quick
  ? { duration: 3, warmup: 1, rounds: 1, roundDuration: 3, soak: 20, millionRounds: 1, walkPages: 100, topologySeconds: 30 }
  : { duration: 10, warmup: 2, rounds: 5, roundDuration: 5, soak: 90, millionRounds: 3, walkPages: PAGES_DEEP, topologySeconds: 150 }
if (option('--rounds') !== undefined) plan.rounds = Number(option('--rounds'))
if (option('--soak') !== undefined) plan.soak = Number(option('--soak'))
const READ_CONNECTIONS = 50
const LOGIN_CONNECTIONS = 8
const BYSTANDER_CONNECTIONS = 10
const HOSTILE_CONNECTIONS = 20
/** Unknown properties in the hostile body: as many as fit under the posts' 256 KiB body limit. */
const HOSTILE_PROPERTIES = 15_000
const REFRESH_CONNECTIONS = 10
/** Connections of the million-row cases: few, so latency is the query's, not a queue's. */
const LIST_CONNECTIONS = 10
/** Sessions logged in before the run: the refresh grant's pool of tokens (each round may lose one per connection). */
const REFRESH_SESSIONS = REFRESH_CONNECTIONS * (plan.rounds + 3)
const PASSWORD = 'correct horse battery staple'
const POOL_SIZE = '10'

/** A valid post padded with unknown properties: the most work a body can ask of the validator. */
function hostileBody(): string {
  const padding = Object.fromEntries(Array.from({ length: HOSTILE_PROPERTIES }, (_, i) => [`p${i}`, i]))
  return JSON.stringify({ title: 'Hostile', content: 'Hostile', ...padding })
}

interface Case {
  label: string
  /** The server process it loads (for profiles). */
  server: string
  spec: LoadSpec
  /**
   * A case run at the same moment, each with half the connections: for two
   * instances of the service that differ in one setting, a pair loaded
   * together shares whatever else the machine is doing, which a pair loaded
   * one after the other does not.
   */
  together?: string
}

/** A load run, and the CPU time its server used per request (warm-up included). */
type Run = LoadResult & { cpuUs: number }

interface Measured {
  name: string
  label: string
  runs: Run[]
}

/** A window of a server's run, to cut its profile by. */
interface Window {
  server: string
  name: string
  from: number
  to: number
}

async function main() {
  const startedAt = new Date()
  const loadStart = loadavg()
  const clock = performance.now()
  const seconds = () => fixed((performance.now() - clock) / 1000, 1)
  log(`${quick ? 'quick' : 'full'} run; load average ${loadStart}`)

  const database = await startEmbeddedPostgres({ dataDir: '', persistent: false })
  const logDir = path.join(os.tmpdir(), `bench-logs-${process.pid}`)
  mkdirSync(logDir, { recursive: true })
  const servers = new Map<string, Server>()
  const windows: Window[] = []
  const measured = new Map<string, Measured>()
  const facts: Facts = { million: undefined, topology: undefined, samples: [] }

  try {
    await applyMigrations(database.url)
    const secret = randomBytes(48).toString('base64url')
    const jwtEnv = { JWT_ALGORITHM: 'HS256', JWT_SECRET: secret, JWT_ISSUER: 'http://localhost:3000', JWT_AUDIENCE: 'blog-api' }
    const defaultLimits = {
      ...jwtEnv,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'silent',
      MIGRATE_ON_START: 'false',
      DATABASE_POOL_SIZE: POOL_SIZE,
      APP_SECRET: randomBytes(48).toString('base64url'),
      MFA_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      // The cases measure no email (a signup would queue one).
      MAIL_DISABLED: 'true'
    }
    const serviceEnv = {
      ...defaultLimits,
      // The login cases measure hashing, not the per-address rate limit, nor
      // the per-account lockout (which counts logins in flight for one
      // account); the write cases measure writing, not the per-account write limit.
      AUTH_RATE_LIMIT_MAX: '1000000000',
      LOGIN_LOCKOUT_THRESHOLD: '100',
      WRITE_RATE_LIMIT_MAX: '1000000000'
    }
    const profiled = (name: string) => (profileRoot ? { profileDir: path.join(profileRoot, name) } : {})
    const start = async (name: string, file: string, env: Record<string, string>, options = {}) => {
      const port = await freePort()
      servers.set(name, startServer(name, file, { ...env, PORT: String(port) }, options))
      return `http://127.0.0.1:${port}`
    }

    const app = await start('service', 'src/server.ts', { ...serviceEnv, DATABASE_URL: database.url }, profiled('service'))
    // The same service with its post cache off: every read is a database round trip.
    const uncached = await start('uncached', 'src/server.ts', { ...serviceEnv, DATABASE_URL: database.url, POST_CACHE_MB: '0' }, profiled('uncached'))
    // The same service as `npm start` runs it: logging at info, here into a file.
    const logged = await start('logged', 'src/server.ts', { ...serviceEnv, DATABASE_URL: database.url, LOG_LEVEL: 'info' }, {
      ...profiled('logged'),
      stdoutFile: path.join(logDir, 'service.log')
    })
    // A fourth with every limit at its default, for the attack cases.
    const guarded = await start('guarded', 'src/server.ts', { ...defaultLimits, DATABASE_URL: database.url })
    const ceiling = await start('ceiling', 'bench/ceiling.ts', {})
    const peer = await start('peer', 'bench/peer/server.ts', { ...jwtEnv, DATABASE_URL: database.url })
    const bound = await start('bound', 'bench/bound/server.ts', { ...jwtEnv, DATABASE_URL: database.url, DATABASE_POOL_SIZE: POOL_SIZE })
    await Promise.all([
      waitForHttp(`${app}/health`),
      waitForHttp(`${uncached}/health`),
      waitForHttp(`${logged}/health`),
      waitForHttp(`${guarded}/health`),
      waitForHttp(`${ceiling}/`),
      waitForHttp(`${peer}/posts/none`),
      waitForHttp(`${bound}/posts/none`)
    ])
    log(`servers up after ${seconds()} s`)

    const seed = await seedService(app, database.url)
    const { bearer, postId } = seed
    const form = { 'content-type': 'application/x-www-form-urlencoded' }
    const auth = { ...bearer, 'content-type': 'application/json' }
    // What is compared answers the same JSON everywhere.
    await sameAnswers(`/posts/${postId}`, [app, uncached, peer, bound], auth)
    await sameAnswers('/users/me', [app, bound], auth)
    await sameAnswers('/posts?limit=20', [app, bound], auth)
    log(`seeded after ${seconds()} s`)

    const base = { connections: READ_CONNECTIONS, duration: plan.duration, warmup: plan.warmup }
    const createBody = JSON.stringify({ title: 'Benchmark', content: 'Written under load.' })
    const cases: Record<string, Case> = {
      ceiling: { label: 'Ceiling: bare Fastify, small JSON', server: 'ceiling', spec: { ...base, url: `${ceiling}/` } },
      anonymous: { label: '`GET /posts/{id}` without a token', server: 'service', spec: { ...base, url: `${app}/posts/${postId}` } },
      authenticated: { label: '`GET /posts/{id}` with a bearer token', server: 'service', spec: { ...base, url: `${app}/posts/${postId}`, headers: bearer } },
      logged: {
        label: '`GET /posts/{id}` without a token, `LOG_LEVEL=info` (the default), logging to a file; loaded together with the next row',
        server: 'logged',
        spec: { ...base, url: `${logged}/posts/${postId}` },
        together: 'silentTwin'
      },
      silentTwin: {
        label: '`GET /posts/{id}` without a token, silent; loaded together with the previous row',
        server: 'service',
        spec: { ...base, url: `${app}/posts/${postId}` }
      },
      peer: {
        label: 'Peer: Express 5 + jsonwebtoken + Prisma, `GET /posts/{id}` with a bearer token',
        server: 'peer',
        spec: { ...base, url: `${peer}/posts/${postId}`, headers: bearer }
      },
      uncached: {
        label: 'Cold `GET /posts/{id}` with a bearer token (post cache off, `POST_CACHE_MB=0`)',
        server: 'uncached',
        spec: { ...base, url: `${uncached}/posts/${postId}`, headers: bearer }
      },
      boundRead: { label: 'Bound: `GET /posts/{id}`', server: 'bound', spec: { ...base, url: `${bound}/posts/${postId}`, headers: bearer } },
      clientCredentials: {
        label: '`POST /auth/token`, client_credentials grant',
        server: 'service',
        spec: { ...base, url: `${app}/auth/token`, method: 'POST', headers: { ...form, authorization: seed.clientBasic }, body: 'grant_type=client_credentials' }
      },
      refresh: {
        label: `\`POST /auth/token\`, refresh grant (${REFRESH_CONNECTIONS} connections)`,
        server: 'service',
        spec: {
          ...base,
          url: `${app}/auth/token`,
          method: 'POST',
          headers: form,
          // No warm-up: the tokens in flight when a run stops are lost.
          warmup: 0,
          connections: REFRESH_CONNECTIONS,
          refreshTokens: seed.refreshTokens
        }
      },
      me: { label: '`GET /users/me`', server: 'service', spec: { ...base, url: `${app}/users/me`, headers: bearer } },
      boundMe: { label: 'Bound: `GET /users/me`', server: 'bound', spec: { ...base, url: `${bound}/users/me`, headers: bearer } },
      list: { label: '`GET /posts?limit=20`', server: 'service', spec: { ...base, url: `${app}/posts?limit=20` } },
      boundList: { label: 'Bound: `GET /posts?limit=20`', server: 'bound', spec: { ...base, url: `${bound}/posts?limit=20` } },
      create: { label: '`POST /posts`', server: 'service', spec: { ...base, url: `${app}/posts`, method: 'POST', headers: auth, body: createBody } },
      boundCreate: { label: 'Bound: `POST /posts`', server: 'bound', spec: { ...base, url: `${bound}/posts`, method: 'POST', headers: auth, body: createBody } },
      bystander: {
        label: `\`GET /posts?limit=20\`, a bystander at the default limits (${BYSTANDER_CONNECTIONS} connections)`,
        server: 'guarded',
        spec: { ...base, connections: BYSTANDER_CONNECTIONS, url: `${guarded}/posts?limit=20` }
      },
      hostile: {
        label: `\`POST /posts\` with ${HOSTILE_PROPERTIES.toLocaleString('en')} unknown properties from one account (${HOSTILE_CONNECTIONS} connections)`,
        server: 'guarded',
        spec: { ...base, connections: HOSTILE_CONNECTIONS, url: `${guarded}/posts`, method: 'POST', headers: auth, body: hostileBody() }
      },
      hostileUnlimited: {
        label: 'the same with the write limit off (the cost of the bodies themselves)',
        server: 'service',
        spec: { ...base, connections: HOSTILE_CONNECTIONS, url: `${app}/posts`, method: 'POST', headers: auth, body: hostileBody() }
      },
      password: {
        label: `\`POST /auth/token\`, password grant (${LOGIN_CONNECTIONS} connections)`,
        server: 'service',
        // No separate warm-up run (the seeding logins warmed the hashing
        // process): the requests a warm-up leaves in flight when it stops
        // would still be hashed, taking the first second of the measured run.
        spec: { ...base, connections: LOGIN_CONNECTIONS, url: `${app}/auth/token`, method: 'POST', headers: form, body: seed.loginBody }
      }
    }

    const record = (name: string, result: Run, label = cases[name]?.label ?? name) => {
      const entry = measured.get(name) ?? { name, label, runs: [] }
      entry.runs.push(result)
      measured.set(name, entry)
      log(`${name}: ${fixed(result.rps)} req/s, mean ${fixed(result.mean, 2)} ms, p99 ${result.p99} ms, ${fixed(result.cpuUs)} µs CPU/request, non-2xx ${result.non2xx}, errors ${result.errors}, statuses ${JSON.stringify(result.statuses)}`)
    }
    /** Loads a case, keeping the window for its profile. */
    const run = async (name: string, spec: LoadSpec, server: string): Promise<Run> => {
      const process = servers.get(server)
      const at = process?.startedAt ?? 0
      const from = (performance.now() - at) / 1000 + spec.warmup
      const cpuBefore = cpuMs(process?.child.pid ?? 0) ?? NaN
      const result = await load(spec)
      const cpuAfter = cpuMs(process?.child.pid ?? 0) ?? NaN
      windows.push({ server, name, from, to: (performance.now() - at) / 1000 })
      return { ...result, cpuUs: ((cpuAfter - cpuBefore) * 1000) / (result.requests + result.warmupRequests) }
    }
    const measure = async (name: string, overrides: Partial<LoadSpec> = {}) => {
      const entry = cases[name]
      if (!entry) throw new Error(`no case ${name}`)
      const twin = entry.together === undefined ? undefined : cases[entry.together]
      if (entry.together && twin) {
        const half = { connections: Math.ceil(entry.spec.connections / 2) }
        const [result, twinResult] = await Promise.all([
          run(name, { ...entry.spec, ...overrides, ...half }, entry.server),
          run(entry.together, { ...twin.spec, ...overrides, ...half }, twin.server)
        ])
        record(name, result)
        record(entry.together, twinResult)
        return
      }
      const result = await run(name, { ...entry.spec, ...overrides }, entry.server)
      // The refresh tokens left are the ones the next run can use.
      if (result.refreshTokens) entry.spec.refreshTokens = result.refreshTokens
      record(name, result)
    }

    // The compared cases, in blocks of cases compared with each other: each
    // round runs every block, the blocks in a different order and each
    // block's cases forwards or backwards, so neither side of a ratio always
    // runs first.
    const blocks = [
      ['ceiling', 'anonymous', 'authenticated', 'logged', 'peer'],
      ['uncached', 'boundRead', 'clientCredentials', 'refresh'],
      ['me', 'boundMe'],
      ['list', 'boundList'],
      ['create', 'boundCreate']
    ]
      .map((block) => block.filter(wanted))
      .filter((block) => block.length > 0)
    for (let round = 0; round < plan.rounds; round++) {
      log(`round ${round + 1} of ${plan.rounds}; load average ${loadavg()}`)
      for (let b = 0; b < blocks.length; b++) {
        const block = blocks[(b + round) % blocks.length] ?? []
        for (const name of round % 2 ? [...block].reverse() : block) {
          await measure(name, name === 'refresh' ? { duration: plan.roundDuration } : { duration: plan.roundDuration, warmup: 1 })
        }
      }
    }

    // Logins against the hashing bound, alternating too: the bound with as
    // many verifications in flight as the thread pool runs, and with only as
    // many as the service lets run at once (ARGON2_CONCURRENCY's default).
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
        bounds.push(await boundRun())
        turnBounds.push(await boundRun(os.availableParallelism()))
      }
    }

    // Logins flooding in while authenticated reads go on.
    if (wanted('flood')) {
      const [floodReads, floodLogins] = await Promise.all([
        run('floodReads', cases.authenticated!.spec, 'service'),
        run('floodLogins', cases.password!.spec, 'service')
      ])
      record('floodReads', floodReads)
      record('floodLogins', floodLogins)
    }

    // The worst body a client can send (the largest route limit, filled with
    // unknown properties) arriving from many connections, while a bystander
    // lists posts: its p99 against its p99 alone, alternating.
    if (wanted('hostile')) {
      for (let round = 0; round < Math.min(plan.rounds, 3); round++) {
        await measure('bystander')
        const [underAttack, attack] = await Promise.all([
          run('bystanderUnderAttack', cases.bystander!.spec, 'guarded'),
          run('hostile', cases.hostile!.spec, 'guarded')
        ])
        record('bystanderUnderAttack', underAttack)
        record('hostile', attack)
      }
      // What each such body costs when nothing stops it early: the rate at which one instance refuses them.
      await measure('hostileUnlimited')
    }

    // Memory over a longer mixed run: reads, writes and logins at once.
    if (wanted('memory')) {
      const sampler = sampleMemory(servers.get('service')?.child.pid ?? 0)
      const soak = { duration: plan.soak, warmup: 0 }
      await Promise.all([
        load({ ...cases.authenticated!.spec, ...soak, connections: 20 }),
        load({ ...cases.create!.spec, ...soak, connections: 5 }),
        load({ ...cases.password!.spec, ...soak, connections: 4 })
      ])
      sampler.stop()
      facts.samples = sampler.samples
      log(`memory: ${sampler.samples.length} samples`)
    }

    if (wanted('million')) facts.million = await millionRows({ database, serviceEnv, start, profiled, servers, run, record, seconds })
    if (wanted('topology')) facts.topology = await topologyRun()

    const report = renderReport({
      measured,
      bounds,
      turnBounds,
      facts,
      startedAt,
      loadStart,
      loadEnd: loadavg(),
      elapsed: (performance.now() - clock) / 1000
    })
    process.stdout.write(report + '\n')
    if (outFile) {
      writeResults(outFile, report)
      log(`wrote ${path.relative(process.cwd(), outFile) || outFile}`)
    }
  } finally {
    await stopAll()
    await database.stop()
    rmSync(logDir, { recursive: true, force: true })
    if (profileRoot) cutProfiles(servers, windows)
  }
}

// ---------------------------------------------------------------- seeding

interface Seed {
  bearer: { authorization: string }
  postId: string
  loginBody: string
  refreshTokens: string[]
  clientBasic: string
}

/** Signs up an account and an admin, logs in sessions, registers a service client, writes posts. */
async function seedService(app: string, databaseUrl: string): Promise<Seed> {
  const form = { 'content-type': 'application/x-www-form-urlencoded' }
  const signup = (email: string) =>
    json(
      fetch(`${app}/auth/signup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, full_name: 'Bench Mark', password: PASSWORD })
      })
    )
  const loginBody = (email: string) => new URLSearchParams({ grant_type: 'password', username: email, password: PASSWORD }).toString()
  const login = (email: string) =>
    json<{ access_token: string; refresh_token: string }>(fetch(`${app}/auth/token`, { method: 'POST', headers: form, body: loginBody(email) }))

  await signup('bench@example.com')
  await signup('admin@example.com')
  await promote(databaseUrl, 'admin@example.com')
  const admin = await login('admin@example.com')
  const client = await json<{ client_id: string; client_secret: string }>(
    fetch(`${app}/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'bench', scopes: ['users:read'] })
    })
  )
  const sessions: { access_token: string; refresh_token: string }[] = []
  for (let batch = 0; batch < REFRESH_SESSIONS; batch += 4) {
    const logins = Array.from({ length: Math.min(4, REFRESH_SESSIONS - batch) }, () => login('bench@example.com'))
    sessions.push(...(await Promise.all(logins)))
  }
  // Every connection sends the same token: a per-connection token would make
  // autocannon rebuild each request, and the load generator, which shares
  // the two cores, would then cost more for the authenticated cases than for
  // the anonymous ones. The service's cost per request is the same either
  // way (each token is verified once, then served from the verifier's cache).
  const bearer = { authorization: `Bearer ${sessions[0]?.access_token ?? ''}` }
  let postId = ''
  for (let i = 0; i < 40; i++) {
    const post = await json<{ id: string }>(
      fetch(`${app}/posts`, {
        method: 'POST',
        headers: { ...bearer, 'content-type': 'application/json' },
        body: JSON.stringify({ title: `Post ${i}`, content: 'A short post of the kind a blog serves. '.repeat(10) })
      })
    )
    postId ||= post.id
  }
  return {
    bearer,
    postId,
    loginBody: loginBody('bench@example.com'),
    // The first session's access token is the bearer of the read cases; its refresh token is left alone.
    refreshTokens: sessions.slice(1).map((session) => session.refresh_token),
    clientBasic: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`
  }
}

async function promote(databaseUrl: string, email: string) {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    await client.query(`UPDATE users SET role = 'admin' WHERE email = $1`, [email])
  } finally {
    await client.end()
  }
}

async function sameAnswers(pathname: string, bases: string[], headers: Record<string, string>) {
  const answers = await Promise.all(bases.map((base) => json<unknown>(fetch(`${base}${pathname}`, { headers }))))
  const first = JSON.stringify(answers[0])
  answers.forEach((answer, i) => {
    if (JSON.stringify(answer) !== first) throw new Error(`${bases[i]}${pathname} answers differently:\n${first}\n${JSON.stringify(answer)}`)
  })
}

// ---------------------------------------------------------------- a million rows

interface MillionFacts {
  loadSeconds: number
  counts: typeof MILLION
  lists: { name: string; label: string; depth: number; limit: number }[]
  /** Memory of the service on the large database while clients walked every list deep. */
  walk: MemorySample[]
  walkPages: number
}

interface MillionContext {
  database: Awaited<ReturnType<typeof startEmbeddedPostgres>>
  serviceEnv: Record<string, string>
  start: (name: string, file: string, env: Record<string, string>, options?: object) => Promise<string>
  profiled: (name: string) => object
  servers: Map<string, Server>
  run: (name: string, spec: LoadSpec, server: string) => Promise<Run>
  record: (name: string, result: Run, label?: string) => void
  seconds: () => string
}

/**
 * Two more databases on the same server: one with a few dozen rows per list,
 * one with a million; an instance of the service on each. Each list's first
 * page is loaded on both, and its page 2,000 on the large one, in rounds.
 */
async function millionRows(context: MillionContext): Promise<MillionFacts> {
  const { database, serviceEnv, start, profiled, servers, run, record } = context
  const admin = new pg.Client({ connectionString: database.adminUrl })
  await admin.connect()
  const urls = { small: databaseUrlFor(database.url, 'dozens'), big: databaseUrlFor(database.url, 'million') }
  try {
    for (const name of ['dozens', 'million']) await admin.query(`CREATE DATABASE "${name}"`)
  } finally {
    await admin.end()
  }
  await Promise.all([applyMigrations(urls.small), applyMigrations(urls.big)])
  const smallBase = await start('dozens', 'src/server.ts', { ...serviceEnv, DATABASE_URL: urls.small }, profiled('dozens'))
  const big = await start('million', 'src/server.ts', { ...serviceEnv, DATABASE_URL: urls.big }, profiled('million'))
  await Promise.all([waitForHttp(`${smallBase}/health`), waitForHttp(`${big}/health`)])

  // On each: the admin who reads the lists is also the author of many posts.
  const tokens: Record<string, string> = {}
  const heavy: Record<string, string> = {}
  for (const [key, base] of [['small', smallBase], ['big', big]] as const) {
    const user = await json<{ id: string }>(
      fetch(`${base}/auth/signup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'admin@example.com', full_name: 'Heavy Writer', password: PASSWORD })
      })
    )
    await promote(urls[key], 'admin@example.com')
    heavy[key] = user.id
    const body = new URLSearchParams({ grant_type: 'password', username: 'admin@example.com', password: PASSWORD }).toString()
    tokens[key] = (await json<{ access_token: string }>(fetch(`${base}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body }))).access_token
  }
  await fill(urls.small, heavy.small ?? '', DOZENS)
  log(`loading ${MILLION.users} users, ${MILLION.posts} posts and ${MILLION.events} audit events…`)
  const { seconds: loadSeconds } = await fill(urls.big, heavy.big ?? '', MILLION)
  log(`loaded in ${fixed(loadSeconds, 1)} s (at ${context.seconds()} s)`)

  const lists = listCases(heavy.big ?? '')
  const smallLists = listCases(heavy.small ?? '')
  const specs: Record<string, { spec: LoadSpec; server: string; label: string }> = {}
  const duration = quick ? 2 : 4
  const spec = (url: string, token: string | undefined) => ({
    url,
    headers: token ? { authorization: `Bearer ${token}` } : undefined,
    connections: LIST_CONNECTIONS,
    duration,
    warmup: 1
  })
  // Each list at its default page size: the first page at dozens and at a
  // million rows, and page 2,000 (39,980 rows in); posts also at 100 a page.
  const variants = [...lists.map((list) => ({ list, limit: 20 })), { list: lists[0]!, limit: 100 }]
  const measuredLists: MillionFacts['lists'] = []
  for (const { list, limit } of variants) {
    const name = limit === 20 ? list.name : `${list.name}${limit}`
    const label = `${list.label}, ${limit} a page`
    const token = (key: 'small' | 'big') => (list.admin ? tokens[key] : undefined)
    const depth = limit * (PAGES_DEEP - 1)
    const cursor = await deepCursor(urls.big, list, heavy.big ?? '', depth)
    const small = smallLists.find((candidate) => candidate.name === list.name)
    if (limit === 20 && small) {
      specs[`${name}.dozens`] = { spec: spec(`${smallBase}${withLimit(small.path, limit)}`, token('small')), server: 'dozens', label: `${label}, first page, a few dozen rows` }
    }
    specs[`${name}.first`] = { spec: spec(`${big}${withLimit(list.path, limit)}`, token('big')), server: 'million', label: `${label}, first page, a million rows` }
    specs[`${name}.deep`] = {
      spec: spec(`${big}${withLimit(list.path, limit)}&cursor=${cursor}`, token('big')),
      server: 'million',
      label: `${label}, page ${PAGES_DEEP}, a million rows`
    }
    measuredLists.push({ name, label, depth, limit })
  }
  for (let round = 0; round < plan.millionRounds; round++) {
    for (const list of round % 2 ? [...measuredLists].reverse() : measuredLists) {
      const order = ['dozens', 'first', 'deep']
      for (const variant of round % 2 ? order.reverse() : order) {
        const name = `${list.name}.${variant}`
        const entry = specs[name]
        if (entry) record(name, await run(name, entry.spec, entry.server), entry.label)
      }
    }
  }

  // Deep walks: clients follow next_cursor through every list at once while
  // the service's memory is sampled.
  const pid = servers.get('million')?.child.pid ?? 0
  const sampler = sampleMemory(pid, 500)
  await Promise.all(
    lists.flatMap((list) =>
      [0, 1].map(async (walker) => {
        const headers: Record<string, string> = list.admin ? { authorization: `Bearer ${tokens.big ?? ''}` } : {}
        const path = withLimit(list.path, 100)
        // Two walkers per list at 100 a page, the second from 100,000 rows in (or the middle).
        const start = Math.min(100_000, Math.floor(((await count(urls.big, list, heavy.big ?? '')) * 2) / 3))
        let cursor: string | null = walker === 0 ? '' : await deepCursor(urls.big, list, heavy.big ?? '', start)
        for (let page = 0; page < plan.walkPages && cursor !== null; page++) {
          const answer: { next_cursor: string | null } = await json(fetch(`${big}${path}${cursor ? `&cursor=${cursor}` : ''}`, { headers }))
          cursor = answer.next_cursor
        }
      })
    )
  )
  sampler.stop()
  log(`deep walks done at ${context.seconds()} s; ${sampler.samples.length} memory samples`)
  return { loadSeconds, counts: MILLION, lists: measuredLists, walk: sampler.samples, walkPages: plan.walkPages }
}

// ---------------------------------------------------------------- the topology

interface TopologyFacts {
  ok: boolean
  skipped?: string
  summary: string
}

/** Runs the several-instance topology test and keeps its summary. */
async function topologyRun(): Promise<TopologyFacts> {
  const script = 'test/topology/run.ts'
  if (!existsSync(path.join(root, script))) return { ok: false, skipped: 'not in this checkout', summary: '' }
  log('topology run…')
  try {
    const output = await runNode(script, ['--seconds', String(plan.topologySeconds), '--json'])
    const result = JSON.parse(output.split('\n').pop() ?? '{}') as { ok: boolean; skipped?: string; summary: string }
    return result
  } catch (error) {
    return { ok: false, summary: (error as Error).message.slice(0, 4000) }
  }
}

// ---------------------------------------------------------------- profiles

/** Writes, for every measured case of a profiled server, where its CPU time went. */
function cutProfiles(servers: Map<string, Server>, windows: Window[]) {
  if (!profileRoot) return
  for (const server of servers.values()) {
    if (!server.profileDir || !existsSync(server.profileDir)) continue
    const file = readdirSync(server.profileDir).find((name) => name.endsWith('.cpuprofile'))
    if (!file) continue
    const profile = JSON.parse(readFileSync(path.join(server.profileDir, file), 'utf8')) as Parameters<typeof summarize>[0]
    const byCase = new Map<string, Window[]>()
    for (const window of windows.filter((w) => w.server === server.name)) byCase.set(window.name, [...(byCase.get(window.name) ?? []), window])
    for (const [name, list] of byCase) {
      const parts = list.map((window) => summarize(profile, { from: window.from, to: window.to }))
      const merged = mergeSummaries(parts)
      const text = `# ${name} (${server.name})\n\n${renderProfile(merged, 30)}\n`
      writeFileSync(path.join(profileRoot, `${name}.md`), text)
      log(`profile of ${name}: ${merged.byGroup.slice(0, 6).map(([group, us]) => `${group} ${fixed((100 * us) / merged.total)} %`).join(', ')}`)
    }
  }
  log(`profiles in ${path.relative(process.cwd(), profileRoot)}`)
}

function mergeSummaries(parts: ReturnType<typeof summarize>[]) {
  const add = (key: 'byGroup' | 'byFunction') => {
    const sums = new Map<string, number>()
    for (const part of parts) for (const [name, value] of part[key]) sums.set(name, (sums.get(name) ?? 0) + value)
    return [...sums].sort((a, b) => b[1] - a[1])
  }
  return { total: parts.reduce((sum, part) => sum + part.total, 0), byGroup: add('byGroup'), byFunction: add('byFunction') }
}

// ---------------------------------------------------------------- the report

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

interface Facts {
  million: MillionFacts | undefined
  topology: TopologyFacts | undefined
  /** Memory of the service over the mixed run. */
  samples: MemorySample[]
}

interface ReportInput {
  measured: Map<string, Measured>
  bounds: Bound[]
  turnBounds: Bound[]
  facts: Facts
  startedAt: Date
  loadStart: string
  loadEnd: string
  elapsed: number
}

function renderReport({ measured, bounds, turnBounds, facts, startedAt, loadStart, loadEnd, elapsed }: ReportInput): string {
  const runs = (name: string) => measured.get(name)?.runs ?? []
  const rps = (name: string) => median(runs(name).map((run) => run.rps))
  const p99 = (name: string) => median(runs(name).map((run) => run.p99))
  const meanLatency = (name: string) => median(runs(name).map((run) => run.mean))
  /** The median over rounds of a per-round ratio of two cases run side by side. */
  const ratio = (top: string, bottom: string) => {
    const b = runs(bottom)
    return median(runs(top).map((run, i) => run.rps / (b[i]?.rps ?? NaN)))
  }
  /** The same for mean latencies. */
  const latencyRatio = (top: string, bottom: string) => {
    const b = runs(bottom)
    return median(runs(top).map((run, i) => run.mean / (b[i]?.mean ?? NaN)))
  }
  const ratioTo = (top: string, bottom: Bound[]) => median(runs(top).map((run, i) => run.rps / (bottom[i]?.perSecond ?? NaN)))
  const summarizeBound = (list: Bound[]): Bound => ({
    ...(list[0] ?? { threadpool: NaN, inFlight: NaN, memoryKiB: NaN, timeCost: NaN, parallelism: NaN, nice: NaN, idle: false }),
    perSecond: median(list.map((run) => run.perSecond))
  })
  const bound = summarizeBound(bounds)
  const turnBound = summarizeBound(turnBounds)

  const rows = [...measured.values()]
    .filter((entry) => !entry.name.startsWith('flood') && !entry.name.includes('.') && !['bystanderUnderAttack', 'hostile', 'hostileUnlimited'].includes(entry.name))
    .map((entry) => {
      const r = entry.runs
      return `| ${entry.label} | ${rate(rps(entry.name))} | ${fixed(median(r.map((x) => x.p50)), 1)} | ${fixed(median(r.map((x) => x.p99)), 1)} | ${fixed(median(r.map((x) => x.cpuUs)))} | ${r.length} | ${r.reduce((sum, x) => sum + x.non2xx + x.errors, 0)} |`
    })

  const authP99 = p99('authenticated')
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
  const loggedShare = ratio('logged', 'silentTwin')
  const loggedCpu = median(runs('logged').map((run, i) => run.cpuUs / (runs('silentTwin')[i]?.cpuUs ?? NaN)))
  // Each target with the cases it needs: a partial run (--only) shows those it has.
  const needed: [string[], string][] = [
    [['uncached', 'boundRead'], `| Cold \`GET /posts/{id}\` ÷ its bound | ≥ 0.5× | ${fixed(ratio('uncached', 'boundRead'), 2)}× | ${met(ratio('uncached', 'boundRead') >= 0.5)} |`],
    [['me', 'boundMe'], `| \`GET /users/me\` ÷ its bound | ≥ 0.5× | ${fixed(ratio('me', 'boundMe'), 2)}× | ${met(ratio('me', 'boundMe') >= 0.5)} |`],
    [['list', 'boundList'], `| \`GET /posts?limit=20\` ÷ its bound | ≥ 0.4× | ${fixed(ratio('list', 'boundList'), 2)}× | ${met(ratio('list', 'boundList') >= 0.4)} |`],
    [['create', 'boundCreate'], `| \`POST /posts\` ÷ its bound | ≥ 0.4× | ${fixed(ratio('create', 'boundCreate'), 2)}× | ${met(ratio('create', 'boundCreate') >= 0.4)} |`],
    [['clientCredentials', 'boundRead'], `| client_credentials grant ÷ the bound's cold read | ≥ 0.3× | ${fixed(ratio('clientCredentials', 'boundRead'), 2)}× | ${met(ratio('clientCredentials', 'boundRead') >= 0.3)} |`],
    [['refresh', 'boundRead'], `| (measured, explained below) refresh grant ÷ the bound's cold read | | ${fixed(ratio('refresh', 'boundRead'), 2)}× | |`],
    [['logged', 'silentTwin'], `| Request logging at \`info\` ÷ silent, cached \`GET /posts/{id}\`, loaded together | ≥ 90 % (cost < 10 %) | ${percent(loggedShare)} (cost ${percent(1 - loggedShare)}); CPU per request ${fixed(loggedCpu, 2)}× | ${met(loggedShare >= 0.9)} |`],
    [['authenticated', 'anonymous'], `| Authenticated \`GET /posts/{id}\` ÷ the same without a token | ≥ 90 % | ${percent(ratio('authenticated', 'anonymous'))} | ${met(ratio('authenticated', 'anonymous') >= 0.9)} |`],
    [['anonymous', 'ceiling', 'authenticated'], `| \`GET /posts/{id}\` ÷ bare Fastify ceiling (without / with a token) | ≥ 40 % | ${percent(ratio('anonymous', 'ceiling'))} / ${percent(ratio('authenticated', 'ceiling'))} | ${met(ratio('authenticated', 'ceiling') >= 0.4)} |`],
    [['authenticated', 'peer'], `| Authenticated \`GET /posts/{id}\` ÷ Express peer | ≥ 1.5× | ${fixed(ratio('authenticated', 'peer'), 2)}× | ${met(ratio('authenticated', 'peer') >= 1.5)} |`],
    [['uncached', 'peer'], `| (for reference) cold \`GET /posts/{id}\` ÷ Express peer | | ${fixed(ratio('uncached', 'peer'), 2)}× | |`],
    [['authenticated'], `| p99 of authenticated reads, ${READ_CONNECTIONS} connections | < 20 ms | ${fixed(authP99, 1)} ms | ${met(authP99 < 20)} |`],
    [['password'], `| Password grant ÷ raw argon2 bound (${bound.inFlight} in flight) | ≥ 90 % | ${percent(ratioTo('password', bounds))} | ${met(ratioTo('password', bounds) >= 0.9)} |`],
    [['password'], `| (for reference) password grant ÷ argon2 with the service's ${turnBound.inFlight} hash(es) at once | | ${percent(ratioTo('password', turnBounds))} | |`],
    [['floodReads', 'authenticated'], `| Authenticated reads' p99 while logins flood in ÷ unloaded p99 | ≤ 2× | ${fixed(floodP99, 1)} ÷ ${fixed(authP99, 1)} ms = ${fixed(floodFactor, 2)}× | ${met(floodFactor <= 2)} |`],
    [['bystanderUnderAttack', 'bystander'], `| A bystander's p99 while ${HOSTILE_CONNECTIONS} connections send ${HOSTILE_PROPERTIES.toLocaleString('en')}-property bodies ÷ its p99 alone | ≤ 2× | ${fixed(attackedP99, 1)} ÷ ${fixed(bystanderP99, 1)} ms = ${fixed(attackFactor, 2)}× | ${met(attackFactor <= 2)} |`],
  ]
  const targets = needed.filter(([names]) => names.every((name) => runs(name).length > 0)).map(([, line]) => line)
  const memory = memoryGrowth(facts.samples, (s) => s.rss + s.children)
  if (facts.samples.length > 0) {
    targets.push(`| RSS growth after warm-up over a ${plan.soak} s mixed run | flat (< 5 %) | ${fixed(memory.growth, 1)} MiB (${percent(memory.share)}); trend ${fixed(memory.trend, 2)} MiB/min | ${met(memory.share < 0.05)} |`)
  }

  const million = facts.million
  const millionLines: string[] = []
  if (million) {
    const walk = memoryGrowth(million.walk, (s) => s.rss)
    targets.push(`| A million rows loaded with SQL | < 60 s | ${fixed(million.loadSeconds, 1)} s | ${met(million.loadSeconds < 60)} |`)
    millionLines.push(
      '### A million rows',
      '',
      `${million.counts.users.toLocaleString('en')} users, ${million.counts.posts.toLocaleString('en')} posts (${(million.counts.posts / million.counts.heavyEvery).toLocaleString('en')} by one author) and ${million.counts.events.toLocaleString('en')} audit events, loaded in ${fixed(million.loadSeconds, 1)} s; the small database has ${DOZENS.users} users, ${DOZENS.posts} posts and ${DOZENS.events} events. ${LIST_CONNECTIONS} connections per case, ${plan.millionRounds} round(s); ratios are medians of per-round ratios.`,
      '',
      '| list | first page, dozens: req/s | first page, a million: req/s, mean ms | ÷ dozens (≥ 0.8×) | page 2,000: req/s, mean ms | page 2,000 ÷ page 1 latency (≤ 1.5×) | rows before page 2,000 |',
      '|---|---:|---:|---:|---:|---:|---:|'
    )
    for (const list of million.lists) {
      const hasDozens = runs(`${list.name}.dozens`).length > 0
      const firstShare = ratio(`${list.name}.first`, `${list.name}.dozens`)
      const deepFactor = latencyRatio(`${list.name}.deep`, `${list.name}.first`)
      millionLines.push(
        `| ${list.label} | ${hasDozens ? rate(rps(`${list.name}.dozens`)) : ''} | ${rate(rps(`${list.name}.first`))}, ${fixed(meanLatency(`${list.name}.first`), 2)} | ${hasDozens ? `${fixed(firstShare, 2)}× ${met(firstShare >= 0.8)}` : ''} | ${rate(rps(`${list.name}.deep`))}, ${fixed(meanLatency(`${list.name}.deep`), 2)} | ${fixed(deepFactor, 2)}× ${met(deepFactor <= 1.5)} | ${list.depth.toLocaleString('en')} |`
      )
      targets.push(
        hasDozens
          ? `| ${list.label}: first page at a million ÷ at dozens; page 2,000 ÷ page 1 latency | ≥ 0.8×; ≤ 1.5× | ${fixed(firstShare, 2)}×; ${fixed(deepFactor, 2)}× | ${met(firstShare >= 0.8 && deepFactor <= 1.5)} |`
          : `| ${list.label}: page 2,000 ÷ page 1 latency | ≤ 1.5× | ${fixed(deepFactor, 2)}× | ${met(deepFactor <= 1.5)} |`
      )
    }
    millionLines.push(
      '',
      `Deep walks: two clients per list followed \`next_cursor\` at 100 a page for ${million.walkPages} pages each (one from the first page, one from 100,000 rows in, or two thirds of a shorter list), all lists at once, while the service's RSS was sampled every 0.5 s: ${fixed(walk.first, 1)} MiB after warm-up, ${fixed(walk.last, 1)} MiB at the end (${percent(walk.share)}), trend ${fixed(walk.trend, 2)} MiB/min, peak ${fixed(walk.peak, 1)} MiB.`,
      ''
    )
    targets.push(`| Service RSS during the deep walks | flat (< 5 %) | ${fixed(walk.growth, 1)} MiB (${percent(walk.share)}) | ${met(walk.share < 0.05)} |`)
  }
  const topology = facts.topology
  if (topology) {
    targets.push(`| Topology: PgBouncer, two instances behind nginx, Redis; one SIGKILLed | passes | ${topology.skipped ? `skipped (${topology.skipped})` : topology.ok ? 'passed' : 'failed'} | ${topology.skipped ? '' : met(topology.ok)} |`)
  }

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
    `Compared cases ran side by side in ${plan.rounds} round(s) of 1 s warm-up and ${plan.roundDuration} s measured each (${READ_CONNECTIONS} connections unless noted), each round in another order; the table shows medians, ratios are medians of per-round ratios. Other cases: ${plan.warmup} s warm-up, ${plan.duration} s measured. autocannon runs in a process of its own.`,
    `Tokens: HS256 (the one family jsonwebtoken and the service share), the same token on every connection. Database pool: ${POOL_SIZE} connections for the service, the peer and the bound. UV_THREADPOOL_SIZE: ${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}.`,
    '',
    '### Throughput and latency',
    '',
    '| case | requests/s | p50 ms | p99 ms | server CPU µs/request | runs | non-2xx |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows,
    ...(bounds.length === 0 ? [] : [bound, turnBound]).map(
      (b) =>
        `| Raw argon2id verifications (m=${b.memoryKiB} KiB, t=${b.timeCost}, p=${b.parallelism}, nice ${b.nice}${b.idle ? ', SCHED_IDLE' : ''}), ${b.inFlight} in flight | ${fixed(b.perSecond, 1)} | | | | ${bounds.length} | |`
    ),
    ...(floodLogins === undefined
      ? []
      : [
          `| Authenticated \`GET /posts/{id}\` while logins flood in | ${fixed(rps('floodReads'))} | ${fixed(median(runs('floodReads').map((x) => x.p50)), 1)} | ${fixed(floodP99, 1)} | | 1 | |`,
          `| Password grant during that flood | ${fixed(floodLogins.rps, 1)} | ${fixed(floodLogins.p50, 1)} | ${fixed(floodLogins.p99, 1)} | | 1 | |`
        ]),
    ...(hostileRuns.length === 0
      ? []
      : [
          `| The bystander while hostile bodies arrive | ${fixed(rps('bystanderUnderAttack'))} | ${fixed(median(runs('bystanderUnderAttack').map((x) => x.p50)), 1)} | ${fixed(attackedP99, 1)} | | ${runs('bystanderUnderAttack').length} | |`,
          `| ${measured.get('hostile')?.label ?? 'hostile'}: ${statuses(hostileRuns)} | ${fixed(median(hostileRuns.map((x) => x.requests / plan.duration)))} | ${fixed(median(hostileRuns.map((x) => x.p50)), 1)} | ${fixed(p99('hostile'), 1)} | | ${hostileRuns.length} | |`,
          `| The same bodies with the write limit off, all answered 400: ${fixed(unlimitedRun ? (1000 / (unlimitedRun.requests / plan.duration)) * os.availableParallelism() : NaN, 1)} ms of CPU each at most | ${fixed(unlimitedRun ? unlimitedRun.requests / plan.duration : NaN)} | ${fixed(unlimitedRun?.p50 ?? NaN, 1)} | ${fixed(unlimitedRun?.p99 ?? NaN, 1)} | | 1 | |`
        ]),
    '',
    '### Targets',
    '',
    '| target | wanted | measured | |',
    '|---|---|---|---|',
    ...targets,
    '',
    ...(facts.samples.length > 0
      ? [
          `Memory: RSS of the service and its child processes, sampled each second over ${plan.soak} s of mixed load (20 connections reading, 5 writing posts, 4 logging in): ` +
            `${fixed(memory.first, 1)} MiB after warm-up (the first quarter), ${fixed(memory.last, 1)} MiB at the end (means of ${memory.window} samples), peak ${fixed(memory.peak, 1)} MiB; ` +
            `the service process alone: ${fixed(memoryGrowth(facts.samples, (s) => s.rss).first, 1)} → ${fixed(memoryGrowth(facts.samples, (s) => s.rss).last, 1)} MiB.`,
          ''
        ]
      : []),
    ...millionLines,
    ...(topology && !topology.skipped ? ['### Several instances', '', '```', topology.summary.trim(), '```', ''] : [])
  ].join('\n').trimEnd()
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
