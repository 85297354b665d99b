// A login whose client closes the connection while its password hash waits for
// a turn is dropped without hashing: in a flood, hashes for clients that gave
// up would delay everyone still waiting. Closing a connection needs a real
// socket, so this file listens on 127.0.0.1.
import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp, fileDatabase, PASSWORD, signup, uniqueEmail } from './helper.js'

let app: FastifyInstance
let base: string

beforeAll(async () => {
  // One hash at a time, each slow enough (about 0.6 s here; seconds on a loaded machine) for the
  // next logins to queue behind it while the test watches the queue.
  app = await buildApp({ ARGON2_CONCURRENCY: 1, ARGON2_MEMORY_KIB: 16384, ARGON2_TIME_COST: 80 })
  base = await app.listen({ host: '127.0.0.1', port: 0 })
})
afterAll(async () => {
  await app?.close()
})

const login = (email: string, password: string, userAgent: string, signal?: AbortSignal) =>
  fetch(`${base}/auth/token`, {
    method: 'POST',
    headers: { 'user-agent': userAgent },
    body: new URLSearchParams({ grant_type: 'password', username: email, password }),
    signal
  })

/** A gauge of the hashing queue, as /metrics would show it. */
async function gauge(name: 'blog_api_password_hash_queue' | 'blog_api_password_hashes_running'): Promise<number> {
  const metric = await app.metrics.registry.getSingleMetric(name)?.get()
  return metric?.values[0]?.value ?? NaN
}

/** Waits until the hashing queue is in the given state (no fixed sleeps: a loaded machine takes its time). */
async function until(running: number, waiting: number) {
  await expect.poll(async () => [await gauge('blog_api_password_hashes_running'), await gauge('blog_api_password_hash_queue')], { timeout: 20_000, interval: 10 }).toEqual([running, waiting])
}

async function failuresFrom(userAgent: string): Promise<number> {
  // Audit events are written in batches: what this instance recorded so far, first.
  await app.auditLog.flush()
  const client = new pg.Client({ connectionString: (await fileDatabase()).url })
  await client.connect()
  try {
    const result = await client.query(`SELECT count(*)::int AS n FROM audit_events WHERE kind = 'login.failure' AND user_agent = $1`, [userAgent])
    return (result.rows[0] as { n: number }).n
  } finally {
    await client.end()
  }
}

describe('a login whose client leaves while it waits for a hash', () => {
  // Five deliberately slow hashes in a row: on a loaded machine that is more than the default 30 s.
  it('is not hashed, and the logins around it are answered', { timeout: 180_000 }, async () => {
    const email = uniqueEmail('abandon')
    await signup(app, { email })

    const first = login(email, PASSWORD, 'first')
    await until(1, 0)
    // The first login's hash is running; this one queues behind it, then its client gives up.
    const leaving = new AbortController()
    const abandoned = login(email, 'a wrong password, never checked', 'abandoned', leaving.signal)
    await until(1, 1)
    const third = login(email, PASSWORD, 'third')
    await until(1, 2)
    leaving.abort()
    await expect(abandoned).rejects.toThrow()

    expect((await first).status).toBe(200)
    expect((await third).status).toBe(200)
    // A wrong password that had been verified would have left a login.failure.
    expect(await failuresFrom('abandoned')).toBe(0)

    // The same wrong password, waited for, is verified and recorded.
    const waited = await login(email, 'a wrong password, never checked', 'waited')
    expect(waited.status).toBe(400)
    expect(await failuresFrom('waited')).toBe(1)
  })
})
