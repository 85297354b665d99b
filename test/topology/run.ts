// The service as production runs it with more than one instance: PgBouncer
// in transaction mode in front of PostgreSQL, two instances behind nginx
// (round robin), redis-server for the shared limits. The soak tool drives it
// through nginx for a few minutes while one instance is killed with SIGKILL
// and started again. Then:
// - no acknowledged write is lost (the soak reads back every post it was
//   answered 201 for and did not delete);
// - no 5xx but for requests in flight on the killed instance when it died
//   (each 5xx in nginx's log is accounted for: sent to that instance before
//   the kill, answered after it), and no network error;
// - a logout on one instance is refused on the other within 1 s (checked
//   every few seconds during the soak, before and after the restart);
// - rate limits and login lockouts are counted across both instances.
//
//   npm run test:topology [-- --seconds 120] [--json]
//
// .ci/run runs it after the test suite; `npm run bench` runs it for its
// report. It needs pgbouncer, nginx and redis-server (Debian's packages):
// without them it says so and exits 0, except in CI (CI set), where it fails.
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { randomBytes, randomUUID } from 'node:crypto'
import { startEmbeddedPostgres } from '../../src/db/embedded.js'
import { freePort } from '../ports.js'
import {
  ready,
  run,
  type Running,
  signingKeyFile,
  startInstance,
  startNginx,
  startPgBouncer,
  startRedis,
  stop,
  until,
  which
} from './servers.js'

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '120' }, json: { type: 'boolean', default: false } } })
const SOAK_SECONDS = Number(values.seconds)
const RATE_LIMIT = 2000
const PASSWORD = 'topology test password, long enough'
const say = (line: string) => process.stderr.write(`[topology] ${line}\n`)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface SoakReport {
  seconds: number
  requests: number
  operations: Record<string, { count: number; p50: number; p99: number; statuses: Record<string, number> }>
  serverErrors: number
  networkErrors: number
  failures: { operation: string; status: number; sentAt: number; answeredAt: number; detail: string }[]
  checked: number
  lost: string[]
  changed: string[]
}

interface Result {
  ok: boolean
  skipped?: string
  summary: string
}

async function main(): Promise<Result> {
  const missing = ['pgbouncer', 'nginx', 'redis-server'].filter((program) => !which(program))
  if (missing.length > 0) {
    const message = `needs ${missing.join(', ')} (apt-get install -y pgbouncer nginx redis-server)`
    if (process.env.CI) throw new Error(message)
    return { ok: true, skipped: message, summary: '' }
  }

  const dir = mkdtempSync(path.join(tmpdir(), 'topology-'))
  // PgBouncer runs as nobody and reads its files here.
  chmodSync(dir, 0o755)
  const processes: Running[] = []
  const problems: string[] = []
  const lines: string[] = []
  const database = await startEmbeddedPostgres({ dataDir: '', persistent: false })
  try {
    const direct = new URL(database.url)
    const [bouncerPort, redisPort, nginxPort, portA, portB] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()])
    processes.push(startPgBouncer(dir, bouncerPort, direct, 'nobody'))
    processes.push(startRedis(dir, redisPort))
    const pooled = new URL(database.url)
    pooled.port = String(bouncerPort)
    const keyFile = signingKeyFile(dir)
    // The same on both instances, as the signing key: a session or a second factor begun on one works on the other.
    const appSecret = randomBytes(48).toString('base64url')
    const mfaKey = randomBytes(32).toString('base64')

    const environment = (port: number): Record<string, string> => ({
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: pooled.toString(),
      DATABASE_DIRECT_URL: direct.toString(),
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      JWT_PRIVATE_KEY: keyFile,
      PUBLIC_URL: `http://127.0.0.1:${nginxPort}`,
      APP_SECRET: appSecret,
      MFA_ENCRYPTION_KEY: mfaKey,
      // The soak signs up many accounts; their emails are not what this checks.
      MAIL_DISABLED: 'true',
      // nginx is the proxy: the client's address is the one it forwards.
      TRUST_PROXY: '127.0.0.1',
      LOG_LEVEL: 'info',
      AUTH_RATE_LIMIT_MAX: String(RATE_LIMIT),
      // The soak's eight clients write far faster than a person: at the
      // per-account write limit's default almost every write would be a 429,
      // and no acknowledged write would be left to read back.
      WRITE_RATE_LIMIT_MAX: '1000000',
      // Real argon2id, at a cost a shared test machine can afford for many logins.
      ARGON2_MEMORY_KIB: '4096',
      ARGON2_TIME_COST: '2',
      ARGON2_PARALLELISM: '1',
      // On a busy CI machine a starved process would shed load (503): not what this checks.
      PRESSURE_MAX_EVENT_LOOP_DELAY: '0'
    })
    const instances: Record<'a' | 'b', { port: number; running: Running }> = {
      a: { port: portA, running: startInstance(dir, 'instance-a', environment(portA)) },
      b: { port: portB, running: startInstance(dir, 'instance-b', environment(portB)) }
    }
    processes.push(instances.a.running, instances.b.running)
    processes.push(startNginx(dir, nginxPort, [portA, portB]))
    // Both apply migrations at start: one does, the other waits on the lock and finds nothing to do.
    await until('both instances ready', async () => (await ready(portA)) && (await ready(portB)), 120_000)
    const nginx = `http://127.0.0.1:${nginxPort}`
    await until('nginx', async () => (await fetch(`${nginx}/health`)).ok)
    say(`up: PostgreSQL ${direct.port}, PgBouncer ${bouncerPort}, Redis ${redisPort}, instances ${portA} and ${portB}, nginx ${nginxPort}`)

    // ---------------------------------------------------------------- the soak, a kill, logouts
    const soakFile = path.join(dir, 'soak.json')
    const soak = run(dir, 'soak', 'sh', ['-c', `exec "${process.execPath}" --import tsx src/cli/soak.ts --url ${nginx} --seconds ${SOAK_SECONDS} --clients 8 --json > "${soakFile}"`])
    processes.push(soak)
    const soakStarted = Date.now()
    const logoutTimes: number[] = []
    let killedAt = 0
    let downFor = 0
    const checks = (async () => {
      let turn = 0
      while (soak.child.exitCode === null && Date.now() - soakStarted < SOAK_SECONDS * 1000 - 5000) {
        const elapsed = Date.now() - soakStarted
        if (killedAt === 0 && elapsed > (SOAK_SECONDS * 1000) / 3) {
          killedAt = Date.now()
          instances.a.running.child.kill('SIGKILL')
          await instances.a.running.exited
          say(`killed instance a (SIGKILL) at ${((killedAt - soakStarted) / 1000).toFixed(1)} s of the soak`)
          await sleep(3000)
          instances.a.running = startInstance(dir, 'instance-a', environment(portA))
          processes.push(instances.a.running)
          await until('instance a back', () => ready(portA), 120_000)
          downFor = Date.now() - killedAt
          say(`instance a ready again ${(downFor / 1000).toFixed(1)} s after the kill`)
          continue
        }
        const [from, to] = turn++ % 2 === 0 ? [instances.a, instances.b] : [instances.b, instances.a]
        const ms = await logoutElsewhere(from.port, to.port)
        logoutTimes.push(ms)
        if (ms > 1000) problems.push(`a logout on ${from.port} was refused on ${to.port} only after ${ms} ms`)
        await sleep(4000)
      }
    })()
    await Promise.all([soak.exited, checks])
    const report = JSON.parse(readFileSync(soakFile, 'utf8')) as SoakReport

    // ---------------------------------------------------------------- 5xx: only in flight on the killed instance
    const access = readFileSync(path.join(dir, 'nginx-access.log'), 'utf8').trim().split('\n')
    const served = access.map((line) => {
      const [msec, requestTime, status, upstream] = line.split('|')
      const end = Number(msec) * 1000
      return { end, start: end - Number(requestTime) * 1000, status: Number(status), upstream: upstream ?? '', line }
    })
    const errors = served.filter((entry) => entry.status >= 500)
    const inFlight = errors.filter((entry) => entry.upstream.includes(`:${portA}`) && entry.start <= killedAt + 1000 && entry.end >= killedAt - 50)
    for (const entry of errors.filter((e) => !inFlight.includes(e))) problems.push(`a 5xx not explained by the kill: ${entry.line}`)
    if (report.networkErrors > 0) problems.push(`${report.networkErrors} network errors: ${report.failures.filter((f) => f.status === 0).map((f) => f.detail).slice(0, 3).join('; ')}`)
    if (report.serverErrors !== errors.length) problems.push(`the soak saw ${report.serverErrors} 5xx, nginx logged ${errors.length}`)
    if (report.lost.length > 0 || report.changed.length > 0) problems.push(`acknowledged posts lost: ${report.lost.length}, changed: ${report.changed.length}`)
    if (report.checked === 0) problems.push('no acknowledged post was left to read back: the check of lost writes checked nothing')
    if (killedAt === 0) problems.push('the soak ended before the kill')
    if (logoutTimes.length < 4) problems.push(`only ${logoutTimes.length} logout checks ran`)

    // ---------------------------------------------------------------- limits across both
    const rate = await rateLimitAcrossBoth(nginx)
    if (rate.accepted !== RATE_LIMIT) problems.push(`rate limit: ${rate.accepted} accepted of ${rate.sent} from one address, limit ${RATE_LIMIT}`)
    if (Object.keys(rate.byInstance).length < 2) problems.push(`rate limit: answered by ${Object.keys(rate.byInstance).join(', ')} only`)
    const lockout = await lockoutAcrossBoth(instances.a.port, instances.b.port)
    if (!lockout.locked) problems.push(`lockout: after 5 failed logins split over both instances, the next was answered ${lockout.status}`)

    const statuses: Record<string, number> = {}
    for (const operation of Object.values(report.operations)) {
      for (const [status, count] of Object.entries(operation.statuses)) statuses[status] = (statuses[status] ?? 0) + count
    }
    lines.push(
      `PgBouncer (transaction pooling, 12 server connections) in front of PostgreSQL; two instances (pool 10 each, LISTEN on the direct URL) behind nginx round robin; Redis for rate limits and lockouts.`,
      `Soak through nginx: 8 clients, ${report.seconds.toFixed(0)} s, ${report.requests} requests (${(report.requests / report.seconds).toFixed(0)}/s); statuses ${Object.entries(statuses).map(([s, n]) => `${s}: ${n}`).join(', ')}.`,
      `Instance a SIGKILLed ${((killedAt - soakStarted) / 1000).toFixed(0)} s in, started again 3 s later, ready ${(downFor / 1000).toFixed(1)} s after the kill.`,
      `5xx: ${errors.length}, of which ${inFlight.length} in flight on instance a when it was killed; network errors: ${report.networkErrors}.`,
      `Acknowledged posts read back: ${report.checked}; lost: ${report.lost.length}; changed: ${report.changed.length}.`,
      `Logout on one instance refused on the other: ${logoutTimes.length} checks, slowest ${Math.max(...logoutTimes)} ms, median ${median(logoutTimes)} ms.`,
      `Rate limit (${RATE_LIMIT} per window per address): ${rate.sent} requests from one address through nginx, ${rate.accepted} accepted (${Object.entries(rate.byInstance).map(([upstream, n]) => `${n} by ${upstream}`).join(', ')}), the rest 429.`,
      `Lockout: 5 failed logins for one email, alternating instances; the next attempt: ${lockout.status}.`,
      problems.length === 0 ? 'Passed.' : `FAILED:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`
    )
    return { ok: problems.length === 0, summary: lines.join('\n') }
  } finally {
    for (const running of [...processes].reverse()) await stop(running)
    await database.stop()
    if (problems.length === 0) rmSync(dir, { recursive: true, force: true })
    else say(`logs kept in ${dir}`)
  }
}

let addresses = 0
/**
 * A client address of its own for each check (TEST-NET-2), passed in
 * X-Forwarded-For: the instances trust it from 127.0.0.1, where nginx is,
 * and where this harness is too.
 */
const testAddress = () => `198.51.100.${++addresses}`

const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? NaN

async function json(response: Promise<Response>): Promise<{ status: number; body: Record<string, unknown> }> {
  const answer = await response
  const text = await answer.text()
  return { status: answer.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} }
}

/**
 * Signs up and logs in on one instance, uses the token on the other, logs
 * out on the first, and answers how long the other took to refuse the token.
 */
async function logoutElsewhere(from: number, to: number): Promise<number> {
  const on = (port: number) => `http://127.0.0.1:${port}`
  const email = `logout-${randomUUID()}@example.com`
  // A client address of its own, so the soak's requests do not count against its limit.
  const client = { 'x-forwarded-for': testAddress() }
  const signup = await json(
    fetch(`${on(from)}/auth/signup`, {
      method: 'POST',
      headers: { ...client, 'content-type': 'application/json' },
      body: JSON.stringify({ email, full_name: 'Logout Check', password: PASSWORD })
    })
  )
  if (signup.status !== 201) throw new Error(`signup for the logout check: ${signup.status}`)
  const login = await json(
    fetch(`${on(from)}/auth/token`, { method: 'POST', headers: client, body: new URLSearchParams({ grant_type: 'password', username: email, password: PASSWORD }) })
  )
  const token = String(login.body.access_token)
  const me = () => fetch(`${on(to)}/users/me`, { headers: { authorization: `Bearer ${token}` } }).then(async (response) => {
    await response.arrayBuffer()
    return response.status
  })
  if ((await me()) !== 200) throw new Error('the other instance refused a fresh token')
  const logout = await fetch(`${on(from)}/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
  if (logout.status !== 204) throw new Error(`logout: ${logout.status}`)
  const loggedOut = Date.now()
  while ((await me()) === 200) {
    if (Date.now() - loggedOut > 10_000) return 10_000
    await sleep(10)
  }
  return Date.now() - loggedOut
}

/** Sends more revocation requests than the limit from one client address, through nginx. */
async function rateLimitAcrossBoth(nginx: string) {
  const address = testAddress()
  const sent = RATE_LIMIT + 40
  const byInstance: Record<string, number> = {}
  let accepted = 0
  let next = 0
  await Promise.all(
    Array.from({ length: 12 }, async () => {
      while (next < sent) {
        next++
        const response = await fetch(`${nginx}/auth/revoke`, {
          method: 'POST',
          headers: { 'x-forwarded-for': address },
          body: new URLSearchParams({ token: 'not a token' })
        })
        await response.arrayBuffer()
        if (response.status === 200) {
          accepted++
          const upstream = response.headers.get('x-upstream') ?? 'unknown'
          byInstance[upstream] = (byInstance[upstream] ?? 0) + 1
        } else if (response.status !== 429) {
          throw new Error(`revoke: ${response.status}`)
        }
      }
    })
  )
  return { sent, accepted, byInstance }
}

/** Fails five logins for one email on alternate instances; the sixth must find it locked. */
async function lockoutAcrossBoth(a: number, b: number) {
  const email = `locked-${randomUUID()}@example.com`
  const client = { 'x-forwarded-for': testAddress() }
  const attempt = (port: number) =>
    fetch(`http://127.0.0.1:${port}/auth/token`, {
      method: 'POST',
      headers: client,
      body: new URLSearchParams({ grant_type: 'password', username: email, password: 'not the password' })
    }).then(async (response) => {
      await response.arrayBuffer()
      return response.status
    })
  for (let i = 0; i < 5; i++) await attempt(i % 2 === 0 ? a : b)
  const status = await attempt(b)
  return { locked: status === 429, status }
}

try {
  const result = await main()
  if (result.skipped) say(`skipped: ${result.skipped}`)
  else say(`\n${result.summary}`)
  if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`)
  process.exit(result.ok ? 0 : 1)
} catch (error) {
  say(`failed: ${(error as Error).stack ?? String(error)}`)
  if (values.json) process.stdout.write(`${JSON.stringify({ ok: false, summary: (error as Error).message })}\n`)
  process.exit(1)
}
