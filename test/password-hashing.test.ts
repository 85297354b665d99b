// Password hashes run in a child process at a lower CPU priority: signup and
// login work through it, it runs at ARGON2_NICE below the service, a killed
// child costs the logins it had a 503 (and the next login starts a new one),
// and closing the app leaves no process behind. Real argon2, a real child
// process, found and inspected from the outside through /proc.
import { readdirSync, readFileSync } from 'node:fs'
import os from 'node:os'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.js'
import { buildApp, login, PASSWORD, signup, tokenRequest, useApp } from './helper.js'
import { childrenOf, statFields } from './proc.js'

/** Hashing processes this test process has started and that still run. */
function hashingChildren(): number[] {
  return childrenOf(process.pid).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('argon2-child')
    } catch {
      return false
    }
  })
}

/** The one hashing process that appeared since `before`. */
function newChild(before: number[]): number {
  const added = hashingChildren().filter((pid) => !before.includes(pid))
  expect(added).toHaveLength(1)
  return added[0] ?? 0
}

const running = (pid: number) => statFields(`/proc/${pid}/stat`) !== undefined
/** Field 19 of /proc/<pid>/stat: the nice value. */
const niceOf = (path: string) => Number(statFields(path)?.[16])
/** Field 41 of /proc/<pid>/stat: the scheduling policy (0 SCHED_OTHER, 5 SCHED_IDLE). */
const policyOf = (path: string) => Number(statFields(path)?.[38])
const SCHED_OTHER = 0
const SCHED_IDLE = 5
/** User plus system CPU time, in clock ticks (fields 14 and 15). */
const cpuTicks = (pid: number) => {
  const fields = statFields(`/proc/${pid}/stat`) ?? []
  return Number(fields[11]) + Number(fields[12])
}

// At the file's top level: the file's database lives as long as the scope of
// the first useApp(), and the tests below build apps of their own on it.
const ctx = useApp({ ARGON2_NICE: 7, ARGON2_IDLE_SCHEDULING: true })

describe('password hashing in a child process', () => {
  it('signs up and logs in, hashing in a process of its own at ARGON2_NICE below the service', async () => {
    const before = hashingChildren()
    const user = await signup(ctx.app)
    const child = newChild(before)
    const tokens = await login(ctx.app, user.email)
    expect(tokens.token_type).toBe('bearer')
    expect(hashingChildren()).toContain(child)

    // Every thread of the child, libuv's pool included, runs at the lowered priority.
    const expected = Math.min(19, os.getPriority() + 7)
    expect(niceOf(`/proc/${child}/stat`)).toBe(expected)
    const threads = readdirSync(`/proc/${child}/task`)
    expect(threads.length).toBeGreaterThan(1)
    for (const thread of threads) {
      expect(niceOf(`/proc/${child}/task/${thread}/stat`)).toBe(expected)
      // ARGON2_IDLE_SCHEDULING: they run only when nothing else wants the CPU.
      expect(policyOf(`/proc/${child}/task/${thread}/stat`)).toBe(SCHED_IDLE)
    }
    // And that is the default (the tests' configuration turns it off: see helper.ts).
    expect(loadConfig({}).ARGON2_IDLE_SCHEDULING).toBe(true)
  })

  it('a wrong password and a stored hash argon2 cannot read are both a failed login', async () => {
    const user = await signup(ctx.app)
    const wrong = await tokenRequest(ctx.app, { grant_type: 'password', username: user.email, password: 'not the password!' })
    await ctx.app.prisma.user.update({ where: { id: user.id }, data: { passwordHash: 'not an argon2 hash' } })
    const unreadable = await tokenRequest(ctx.app, { grant_type: 'password', username: user.email, password: PASSWORD })
    for (const response of [wrong, unreadable]) {
      expect(response.statusCode).toBe(400)
      expect(response.json()).toEqual({ error: 'invalid_grant', error_description: 'The email or password is incorrect.' })
    }
  })
})

describe('the hashing process comes and goes with the app', () => {
  it('is not started before the first hash', async () => {
    const before = hashingChildren()
    const app = await buildApp()
    try {
      const response = await app.inject({ method: 'GET', url: '/health' })
      expect(response.statusCode).toBe(200)
      expect(hashingChildren()).toEqual(before)
    } finally {
      await app.close()
    }
  })

  it('ARGON2_NICE=0 and ARGON2_IDLE_SCHEDULING=false keep the priority of the service', async () => {
    const before = hashingChildren()
    const app = await buildApp({ ARGON2_NICE: 0, ARGON2_IDLE_SCHEDULING: false })
    try {
      await signup(app)
      const child = newChild(before)
      expect(niceOf(`/proc/${child}/stat`)).toBe(os.getPriority())
      expect(policyOf(`/proc/${child}/stat`)).toBe(SCHED_OTHER)
    } finally {
      await app.close()
    }
  })

  it('killed in the middle of a login: that login gets 503, the next one succeeds', async () => {
    // Parameters that make one verification last long enough (a few hundred
    // milliseconds) to be caught in the act.
    const before = hashingChildren()
    const app = await buildApp({ ARGON2_MEMORY_KIB: 65536, ARGON2_TIME_COST: 2, ARGON2_PARALLELISM: 1 })
    try {
      const user = await signup(app)
      const child = newChild(before)
      const idle = cpuTicks(child)
      const attempt = tokenRequest(app, { grant_type: 'password', username: user.email, password: PASSWORD })
      // The child uses CPU only while it hashes: once it does, the login is in its hands.
      const deadline = Date.now() + 20_000
      while (cpuTicks(child) === idle && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2))
      process.kill(child, 'SIGKILL')

      const response = await attempt
      expect(response.statusCode).toBe(503)
      expect(response.headers['content-type']).toContain('application/problem+json')
      expect(response.headers['retry-after']).toBe('5')
      expect(response.json()).toEqual({
        type: 'about:blank',
        title: 'Service Unavailable',
        status: 503,
        detail: 'The service is temporarily unavailable. Try again shortly.'
      })

      const tokens = await login(app, user.email)
      expect(tokens.access_token).toBeDefined()
      expect(newChild([...before, child])).not.toBe(child)
    } finally {
      await app.close()
    }
  })

  it('closing the app ends the hashing process', async () => {
    const before = hashingChildren()
    const app = await buildApp()
    await signup(app)
    const child = newChild(before)
    await app.close()
    expect(running(child)).toBe(false)
    expect(hashingChildren()).toEqual(before)
  })

  it('closing the app in the middle of a hash answers that signup 503 and leaves no process', async () => {
    const before = hashingChildren()
    // A hash of seconds, not milliseconds: on a loaded machine a short one could end
    // between noticing it started and closing the app.
    const app = await buildApp({ ARGON2_MEMORY_KIB: 65536, ARGON2_TIME_COST: 40, ARGON2_PARALLELISM: 1 })
    await signup(app)
    const child = newChild(before)
    const idle = cpuTicks(child)
    const attempt = app.inject({
      method: 'POST',
      url: '/auth/signup',
      payload: { email: `late-${Date.now()}@example.com`, full_name: 'Late', password: PASSWORD }
    })
    const deadline = Date.now() + 20_000
    while (cpuTicks(child) === idle && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2))
    await app.close()
    expect((await attempt).statusCode).toBe(503)
    expect(running(child)).toBe(false)
  })
})
