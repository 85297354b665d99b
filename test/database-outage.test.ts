// The database goes away in the middle of a test and comes back: routes that
// need it answer 503 problems quickly, /health and token checks keep working,
// and the service recovers by itself (readiness, writes, and revocations
// through a reconnected LISTEN) without a restart.
//
// This file runs a PostgreSQL of its own (persistent, in a temp folder) so it
// can stop and restart it on the same port without disturbing other files.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../src/db/embedded.js'
import { applyMigrations } from '../src/db/migrations.js'
import { bearer, buildApp, fileDatabase, userWithToken } from './helper.js'
import { childrenOf } from './proc.js'

// Generous for a loaded two-core machine; the pool gives up connecting after 3 s,
// and what it guards against is a request held until the client gives up (minutes).
const QUICKLY_MS = 8000

let dataDir: string
let database: EmbeddedDatabase
let app: FastifyInstance

function startDatabase(port?: number) {
  return startEmbeddedPostgres({ dataDir, persistent: true, port })
}

void fileDatabase()

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'outage-pg-'))
  database = await startDatabase()
  await applyMigrations(database.url)
  app = await buildApp({ DATABASE_URL: database.url })
})

afterAll(async () => {
  await app?.close()
  await database?.stop()
  await rm(dataDir, { recursive: true, force: true })
})

async function timed(request: () => Promise<LightMyRequestResponse>) {
  const started = Date.now()
  const response = await request()
  return { response, ms: Date.now() - started }
}

function expectUnavailable(response: LightMyRequestResponse) {
  expect(response.statusCode, response.body).toBe(503)
  expect(response.headers['content-type']).toContain('application/problem+json')
  expect(response.headers['retry-after']).toBe('5')
  expect(response.json()).toMatchObject({ type: 'about:blank', title: 'Service Unavailable', status: 503 })
  expect(response.body).not.toMatch(/127\.0\.0\.1|postgres|\bat \S+:\d+/)
}

describe('a database outage', () => {
  it('answers 503 quickly while the database is down, and recovers by itself when it returns', async () => {
    const user = await userWithToken(app)
    const created = await app.inject({ method: 'POST', url: '/posts', headers: user.headers, payload: { title: 'Before', content: 'the outage' } })
    expect(created.statusCode).toBe(201)
    expect(app.revocations.listening).toBe(true)
    // A post read before the outage is in memory.
    const cached = await app.inject({ method: 'POST', url: '/posts', headers: user.headers, payload: { title: 'Cached', content: 'before the outage' } })
    const cachedUrl = `/posts/${cached.json<{ id: string }>().id}`
    expect((await app.inject({ method: 'GET', url: cachedUrl })).statusCode).toBe(200)

    await database.stop()

    // Readiness and every route that needs the database: 503 problems, fast.
    const ready = await timed(() => app.inject({ method: 'GET', url: '/ready' }))
    expectUnavailable(ready.response)
    expect(ready.ms).toBeLessThan(QUICKLY_MS)

    const burst = await Promise.all([
      timed(() => app.inject({ method: 'GET', url: '/posts' })),
      timed(() => app.inject({ method: 'GET', url: `/posts/${created.json<{ id: string }>().id}` })),
      timed(() => app.inject({ method: 'GET', url: '/users/me', headers: user.headers })),
      timed(() => app.inject({ method: 'POST', url: '/posts', headers: user.headers, payload: { title: 'During', content: 'the outage' } })),
      timed(() => app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: user.tokens.refresh_token } })),
      ...Array.from({ length: 10 }, () => timed(() => app.inject({ method: 'GET', url: '/ready' })))
    ])
    for (const { response, ms } of burst) {
      expectUnavailable(response)
      expect(ms).toBeLessThan(QUICKLY_MS)
    }

    // What needs no database keeps working: liveness, and token checks (in memory).
    const health = await app.inject({ method: 'GET', url: '/health' })
    expect(health.statusCode).toBe(200)
    expect(health.json()).toEqual({ status: 'ok' })
    const forged = await app.inject({ method: 'GET', url: '/users/me', headers: bearer('not.a.token') })
    expect(forged.statusCode).toBe(401)
    const withoutScope = await app.inject({ method: 'GET', url: '/users', headers: user.headers })
    expect(withoutScope.statusCode).toBe(403)
    const jwks = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
    expect(jwks.statusCode).toBe(200)

    // The listener notices the lost connection and keeps trying in the background.
    await expect.poll(() => app.revocations.listening, { timeout: QUICKLY_MS }).toBe(false)
    // Nor are posts served from memory: changes can no longer be heard of.
    expectUnavailable(await app.inject({ method: 'GET', url: cachedUrl }))
    await sleep(1000)

    database = await startDatabase(database.port)

    // No restart of the app: it serves again on its own.
    await expect.poll(async () => (await app.inject({ method: 'GET', url: '/ready' })).statusCode, {
      timeout: 15_000,
      interval: 200
    }).toBe(200)
    const after = await app.inject({ method: 'POST', url: '/posts', headers: user.headers, payload: { title: 'After', content: 'the outage' } })
    expect(after.statusCode).toBe(201)
    expect((await app.inject({ method: 'GET', url: '/users/me', headers: user.headers })).statusCode).toBe(200)
    const refreshed = await app.inject({
      method: 'POST',
      url: '/auth/token',
      payload: { grant_type: 'refresh_token', refresh_token: user.tokens.refresh_token }
    })
    expect(refreshed.statusCode).toBe(200)

    // Revocations reach this instance again: a logout on another instance,
    // delivered only by NOTIFY to the reconnected listener.
    await expect.poll(() => app.revocations.listening, { timeout: 20_000, interval: 200 }).toBe(true)
    const token = refreshed.json<{ access_token: string }>().access_token
    expect((await app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) })).statusCode).toBe(200)
    const other = await buildApp({ DATABASE_URL: database.url })
    try {
      const logout = await other.inject({ method: 'POST', url: '/auth/logout', headers: bearer(token) })
      expect(logout.statusCode).toBe(204)
    } finally {
      await other.close()
    }
    await expect.poll(async () => (await app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) })).statusCode, {
      timeout: 5000,
      interval: 50
    }).toBe(401)
  }, 90_000)

  it('answers /ready with 503 within seconds while the database hangs, and 200 once it answers again', async () => {
    expect((await app.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(200)
    const frozen = await postgresProcesses(database.dataDir)
    expect(frozen.length).toBeGreaterThan(1)
    // A frozen server accepts connections and never answers: the probe must not wait for it.
    for (const pid of frozen) process.kill(pid, 'SIGSTOP')
    try {
      const ready = await timed(() => app.inject({ method: 'GET', url: '/ready' }))
      expectUnavailable(ready.response)
      expect(ready.ms).toBeGreaterThanOrEqual(1900)
      expect(ready.ms).toBeLessThan(QUICKLY_MS)
    } finally {
      for (const pid of frozen) process.kill(pid, 'SIGCONT')
    }
    await expect.poll(async () => (await app.inject({ method: 'GET', url: '/ready' })).statusCode, {
      timeout: 20_000,
      interval: 200
    }).toBe(200)
  }, 60_000)
})

/** The postmaster of a data folder and every process it started. */
async function postgresProcesses(dataDir: string): Promise<number[]> {
  const postmaster = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0])
  return [postmaster, ...childrenOf(postmaster)]
}
