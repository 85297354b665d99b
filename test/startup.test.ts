// What a person sees when the server cannot start: a few plain lines saying
// which setting is wrong and what to do, never a stack trace; and nothing in
// the database changed by a start that was refused for its configuration.
// Each case runs the real server process.
import { spawn } from 'node:child_process'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { createTestDatabase } from './database.js'
import { fileDatabase, TEST_APP_SECRET, TEST_MFA_KEY, TEST_PRIVATE_KEY } from './helper.js'

/** Starts src/server.ts with exactly these settings (nothing inherited from the test run); resolves when it exits. */
function start(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: join(import.meta.dirname, '..'),
      // Without email: what these starts are refused for is the database, the key or the port.
      env: { PATH: process.env.PATH, HOME: process.env.HOME, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'warn', MAIL_DISABLED: 'true', ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
    // A server that did start is not what these cases expect: stop it so the test ends.
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, output })
    })
  })
}

async function listening(): Promise<{ server: Server; port: number }> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  return { server, port: typeof address === 'object' && address ? address.port : 0 }
}

describe('a start that cannot go ahead', () => {
  it('says what is wrong in a few lines, each naming its setting', { timeout: 120_000 }, async () => {
    const { url } = await fileDatabase()
    const empty = await createTestDatabase({ migrated: false })
    const taken = await listening()
    const closed = await listening()
    await new Promise((resolve) => closed.server.close(resolve))
    try {
      const [config, unreachable, noKey, portTaken] = await Promise.all([
        start({ LOG_LEVEL: 'loud', DATABASE_URL: 'garbage' }),
        start({ DATABASE_URL: `postgresql://app:secret@127.0.0.1:${closed.port}/app`, JWT_PRIVATE_KEY: TEST_PRIVATE_KEY, APP_SECRET: TEST_APP_SECRET, MFA_ENCRYPTION_KEY: TEST_MFA_KEY }),
        start({ DATABASE_URL: empty.url }),
        start({ DATABASE_URL: url, JWT_PRIVATE_KEY: TEST_PRIVATE_KEY, APP_SECRET: TEST_APP_SECRET, MFA_ENCRYPTION_KEY: TEST_MFA_KEY, PORT: String(taken.port) })
      ])

      expect(config.code).toBe(1)
      expect(config.output.trim()).toBe(
        [
          'Cannot start: invalid configuration:',
          '    LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent (got "loud")',
          '    DATABASE_URL must be a PostgreSQL URL such as postgresql://user:password@host:5432/database, and the value given is not a URL'
        ].join('\n')
      )

      expect(unreachable.code).toBe(1)
      expect(unreachable.output).toContain(
        `Cannot start: DATABASE_URL: nothing accepts connections at 127.0.0.1:${closed.port} (connection refused).`
      )
      expect(unreachable.output).not.toContain('secret')

      // Refused for its signing key before the migrations: the empty database stays empty.
      expect(noKey.code).toBe(1)
      expect(noKey.output).toContain('Cannot start: JWT_PRIVATE_KEY is required with JWT_ALGORITHM=EdDSA')
      const client = new pg.Client({ connectionString: empty.url })
      await client.connect()
      const tables = await client.query("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'")
      await client.end()
      expect(tables.rows[0]).toEqual({ n: 0 })

      expect(portTaken.code).toBe(1)
      expect(portTaken.output).toContain(
        `Cannot start: port ${taken.port} on 127.0.0.1 is already taken by another process. Stop that process, or choose another port: PORT=${taken.port + 1} npm start`
      )

      for (const { output } of [config, unreachable, noKey, portTaken]) expect(output).not.toMatch(/^\s+at /m)
    } finally {
      taken.server.close()
      await empty.drop()
    }
  })
})
