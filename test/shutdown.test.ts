// Graceful shutdown of the real server process: on SIGTERM it stops accepting
// connections, finishes the requests in flight, closes the database (and
// stops the embedded PostgreSQL), and exits 0.
//
// These tests spawn `src/server.ts` as a child process, since what they check
// (signals, the listening socket, the exit code) exists only in a real process.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { fileDatabase, fileMailbox, MAIL_FROM, PASSWORD, TEST_APP_SECRET, TEST_MFA_KEY, TEST_PRIVATE_KEY, uniqueEmail } from './helper.js'
import { childrenOf, statFields } from './proc.js'

interface Server {
  child: ChildProcess
  base: string
  /** Resolves with the exit code (or signal). */
  exited: Promise<number | string>
  /** Resolves when a stdout line matches. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>
  output(): string
}

function startServer(env: Record<string, string>): Promise<Server> {
  // Only what the test sets: an inherited DATABASE_URL would change the mode.
  const inherited = { ...process.env }
  delete inherited.DATABASE_URL
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: join(import.meta.dirname, '..'),
    env: { ...inherited, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  const waiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = []
  const onData = (chunk: Buffer) => {
    output += chunk.toString('utf8')
    for (const waiter of [...waiters]) {
      const line = output.split('\n').find((candidate) => waiter.pattern.test(candidate))
      if (line !== undefined) {
        waiters.splice(waiters.indexOf(waiter), 1)
        waiter.resolve(line)
      }
    }
  }
  child.stdout.on('data', onData)
  child.stderr.on('data', onData)
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => { resolve(code ?? signal ?? 'unknown') })
  })
  const waitForLine = (pattern: RegExp, timeoutMs = 60_000) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms:\n${output}`)) }, timeoutMs)
      waiters.push({ pattern, resolve: (line) => { clearTimeout(timer); resolve(line) } })
      onData(Buffer.alloc(0))
      void exited.then((code) => { reject(new Error(`the server exited (${code}) before ${pattern}:\n${output}`)) })
    })
  return waitForLine(/listening on http:\/\/127\.0\.0\.1:\d+/).then(
    (line) => ({
      child,
      base: /http:\/\/127\.0\.0\.1:\d+/.exec(line)?.[0] ?? '',
      exited,
      waitForLine,
      output: () => output
    }),
    (error: unknown) => {
      child.kill('SIGKILL')
      throw error
    }
  )
}

/** CPU time (user + system, in clock ticks) a process has used so far. */
function cpuTicks(pid: number): number {
  const fields = statFields(`/proc/${pid}/stat`) ?? []
  // utime and stime are fields 14 and 15 of the stat line; statFields starts at field 3.
  return Number(fields[11]) + Number(fields[12])
}

/** Whether something accepts TCP connections on the port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => { resolve(false) })
  })
}

describe('SIGTERM', () => {
  it('finishes the request in flight, refuses new connections and exits 0', async () => {
    const { url } = await fileDatabase()
    const server = await startServer({
      DATABASE_URL: url,
      JWT_PRIVATE_KEY: TEST_PRIVATE_KEY,
      APP_SECRET: TEST_APP_SECRET,
      MAIL_URL: (await fileMailbox()).url,
      MAIL_FROM,
      MFA_ENCRYPTION_KEY: TEST_MFA_KEY,
      // A costly hash keeps the login in flight long enough to signal during it.
      ARGON2_MEMORY_KIB: '16384',
      ARGON2_TIME_COST: '30',
      ARGON2_PARALLELISM: '1'
    })
    try {
      // As a load balancer would, wait for /ready: the event loop delay of
      // start-up can shed the first requests (503) for a sample or two.
      await expect.poll(async () => (await fetch(`${server.base}/ready`)).status, { timeout: 10_000, interval: 100 }).toBe(200)
      const email = uniqueEmail('shutdown')
      const signup = await fetch(`${server.base}/auth/signup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, full_name: 'Shutdown', password: PASSWORD })
      })
      expect(signup.status).toBe(201)
      // The signup's hash started the hashing process; it idles until the login's hash.
      const hasher = childrenOf(server.child.pid ?? 0).find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('argon2-child'))
      if (hasher === undefined) throw new Error('no hashing process')
      const idle = cpuTicks(hasher)

      let loginDone = false
      const login = fetch(`${server.base}/auth/token`, {
        method: 'POST',
        body: new URLSearchParams({ grant_type: 'password', username: email, password: PASSWORD })
      }).then(async (response) => {
        loginDone = true
        return { status: response.status, body: (await response.json()) as Record<string, unknown> }
      })
      // The hashing process working again means the login is being hashed: in flight.
      await expect.poll(() => cpuTicks(hasher), { timeout: 30_000, interval: 20 }).toBeGreaterThan(idle + 1)
      server.child.kill('SIGTERM')
      await server.waitForLine(/"msg":"shutting down"/)

      // While the login still runs, the listening socket is already closed.
      const port = Number(new URL(server.base).port)
      await expect.poll(() => accepts(port), { timeout: 2000, interval: 20 }).toBe(false)
      expect(loginDone).toBe(false)

      const answer = await login
      expect(answer.status).toBe(200)
      expect(answer.body).toMatchObject({ token_type: 'bearer', access_token: expect.any(String) })

      const started = Date.now()
      expect(await server.exited, server.output()).toBe(0)
      expect(Date.now() - started).toBeLessThan(10_000)
    } finally {
      server.child.kill('SIGKILL')
    }
  }, 120_000)

  it('in development mode, stops the embedded PostgreSQL before exiting 0', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'shutdown-embedded-'))
    // As root, PostgreSQL runs as its own user, which must reach the data folder inside.
    await chmod(folder, 0o755)
    const dataDir = join(folder, 'postgres')
    let server: Server | undefined
    try {
      // No DATABASE_URL: the server runs its own PostgreSQL.
      server = await startServer({ EMBEDDED_PG_DIR: dataDir })
      const line = await server.waitForLine(/embedded PostgreSQL on 127\.0\.0\.1:\d+/)
      const databasePort = Number(/127\.0\.0\.1:(\d+)/.exec(line)?.[1])
      expect(existsSync(join(dataDir, 'postmaster.pid'))).toBe(true)
      expect(await accepts(databasePort)).toBe(true)
      expect((await fetch(`${server.base}/ready`)).status).toBe(200)

      server.child.kill('SIGTERM')
      expect(await server.exited, server.output()).toBe(0)
      expect(existsSync(join(dataDir, 'postmaster.pid'))).toBe(false)
      expect(await accepts(databasePort)).toBe(false)
    } finally {
      server?.child.kill('SIGKILL')
      await rm(folder, { recursive: true, force: true })
    }
  }, 120_000)
})
