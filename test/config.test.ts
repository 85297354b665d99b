// The configuration as a person meets it: empty variables count as unset, a
// bad value stops the start with one line naming the variable and what it
// accepts (never repeating a secret), and a database that cannot be reached
// is described in words that say what to fix.
import { createServer } from 'node:net'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../src/config.js'
import { explainConnectionError } from '../src/db/connection-errors.js'
import { databaseUrlFor } from '../src/db/migrations.js'
import { adminQuery } from './admin-sql.js'
import { fileDatabase } from './helper.js'

/** The problems of a configuration outside development mode (mail off, so only the variables given count). */
function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig({ MAIL_DISABLED: 'true', ...env })
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  throw new Error('the configuration was accepted')
}

describe('the configuration', () => {
  it('takes an empty variable as unset, as Compose passes one it was not given', () => {
    const config = loadConfig({ ADMIN_EMAIL: '', ADMIN_PASSWORD: '', PORT: '', LOG_LEVEL: ' ', DATABASE_URL: '', REDIS_URL: '' })
    expect(config.ADMIN_EMAIL).toBeUndefined()
    expect(config.ADMIN_PASSWORD).toBeUndefined()
    expect(config.PORT).toBe(3000)
    expect(config.LOG_LEVEL).toBe('info')
    expect(config.DATABASE_URL).toBeUndefined()
    expect(config.REDIS_URL).toBeUndefined()
  })

  it('takes the public URL from PORT when it is not given, so another port gets links and an issuer of its own', () => {
    const other = loadConfig({ PORT: '3001' })
    expect({ url: other.PUBLIC_URL, issuer: other.JWT_ISSUER }).toEqual({ url: 'http://localhost:3001', issuer: 'http://localhost:3001' })
    expect(loadConfig({}).PUBLIC_URL).toBe('http://localhost:3000')
    expect(loadConfig({ PORT: '3001', PUBLIC_URL: 'https://api.example.com' }).PUBLIC_URL).toBe('https://api.example.com')
    // Port 0 is whichever port the system gives: nothing to name.
    expect(loadConfig({ PORT: '0' }).PUBLIC_URL).toBe('http://localhost:3000')
  })

  it('names each bad variable once, with what it accepts', () => {
    expect(problemsOf({ LOG_LEVEL: 'loud' })).toEqual([
      'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent (got "loud")'
    ])
    expect(problemsOf({ PORT: 'eighty', DOCS_ENABLED: 'maybe' })).toEqual([
      'PORT must be a whole number from 0 to 65535 (got "eighty")',
      'DOCS_ENABLED must be true or false (got "maybe")'
    ])
    expect(problemsOf({ METRICS_TOKEN: 'short' })).toEqual(['METRICS_TOKEN must be at least 16 characters long (the value given is not)'])
  })

  it('says what is wrong with DATABASE_URL without repeating it', () => {
    const [garbage] = problemsOf({ DATABASE_URL: 'garbage' })
    expect(garbage).toMatch(/^DATABASE_URL must be a PostgreSQL URL such as postgresql:\/\/user:password@host:5432\/database/)
    const [mysql] = problemsOf({ DATABASE_URL: 'mysql://app:s3cret@db/app' })
    expect(mysql).toMatch(/^DATABASE_URL must start with postgresql:\/\//)
    expect(mysql).not.toContain('s3cret')
    const [percent] = problemsOf({ DATABASE_URL: 'postgresql://app:50%off@db/app' })
    expect(percent).toMatch(/DATABASE_PASSWORD/)
    expect(percent).not.toContain('50%off')
  })

  it('puts DATABASE_PASSWORD into DATABASE_URL whatever its characters', () => {
    const password = 'p@ss:w/rd#?%41 ö'
    const config = loadConfig({ DATABASE_URL: 'postgresql://app@db.internal:5432/app', DATABASE_PASSWORD: password, MAIL_DISABLED: 'true' })
    const url = new URL(config.DATABASE_URL ?? '')
    expect({ user: url.username, password: decodeURIComponent(url.password), host: url.host, path: url.pathname }).toEqual({
      user: 'app',
      password,
      host: 'db.internal:5432',
      path: '/app'
    })
    expect(problemsOf({ DATABASE_URL: 'postgresql://app:one@db/app', DATABASE_PASSWORD: 'two' })).toEqual([
      'DATABASE_PASSWORD is set, but DATABASE_URL has a password too: give it in one of them'
    ])
  })

  it('checks DATABASE_DIRECT_URL like DATABASE_URL, and gives it DATABASE_PASSWORD when it carries none', () => {
    const password = 'p@ss:w/rd#?%41 ö'
    const pooled = loadConfig({
      DATABASE_URL: 'postgresql://app@pgbouncer:6432/app',
      DATABASE_DIRECT_URL: 'postgresql://app@db:5432/app',
      DATABASE_PASSWORD: password,
      MAIL_DISABLED: 'true'
    })
    expect(decodeURIComponent(new URL(pooled.DATABASE_URL ?? '').password)).toBe(password)
    expect(decodeURIComponent(new URL(pooled.DATABASE_DIRECT_URL ?? '').password)).toBe(password)
    const own = loadConfig({
      DATABASE_URL: 'postgresql://app@pgbouncer:6432/app',
      DATABASE_DIRECT_URL: 'postgresql://owner:mine@db:5432/app',
      DATABASE_PASSWORD: password,
      MAIL_DISABLED: 'true'
    })
    expect(new URL(own.DATABASE_DIRECT_URL ?? '').password).toBe('mine')

    expect(problemsOf({ DATABASE_DIRECT_URL: 'postgresql://app@db:5432/app' })).toEqual([
      'DATABASE_DIRECT_URL is set without DATABASE_URL: it is the session connection that goes with a pooled DATABASE_URL'
    ])
    const [garbage] = problemsOf({ DATABASE_URL: 'postgresql://app@pgbouncer/app', DATABASE_DIRECT_URL: 'mysql://app:s3cret@db/app' })
    expect(garbage).toMatch(/^DATABASE_DIRECT_URL must start with postgresql:\/\//)
    expect(garbage).not.toContain('s3cret')
  })
})

describe('a database that cannot be used', () => {
  const failure = async (url: string) => {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
    client.on('error', () => {})
    try {
      await client.connect()
    } catch (error) {
      return explainConnectionError(error, url)
    } finally {
      await client.end().catch(() => undefined)
    }
    throw new Error('connected')
  }

  it('nothing listening: names the variable and the address', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const address = server.address()
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
      })
    })
    expect(await failure(`postgresql://app:secret@127.0.0.1:${port}/app`)).toBe(
      `DATABASE_URL: nothing accepts connections at 127.0.0.1:${port} (connection refused). Is PostgreSQL running there, and are the host and port in DATABASE_URL right?`
    )
  })

  it('a wrong password or a missing database: says which, without the password', async () => {
    const { url } = await fileDatabase()
    const wrong = new URL(url)
    wrong.password = 'not-the-password'
    const message = await failure(wrong.toString())
    expect(message).toMatch(/^DATABASE_URL: PostgreSQL refused the password of user "postgres"/)
    expect(message).not.toContain('not-the-password')
    expect(await failure(databaseUrlFor(url, 'no_such_database'))).toMatch(/^DATABASE_URL: the database "no_such_database" does not exist on 127\.0\.0\.1:\d+/)
  })

  it('an unknown host: says the name was not found', () => {
    const error = Object.assign(new Error('getaddrinfo ENOTFOUND base'), { code: 'ENOTFOUND' })
    expect(explainConnectionError(error, 'postgresql://app@base/app')).toBe(
      'DATABASE_URL: the host "base" cannot be found (DNS lookup failed). Check the host name in DATABASE_URL.'
    )
    // Not about reaching the server: left for the caller to report as it is.
    expect(explainConnectionError(new Error('relation "x" does not exist'), 'postgresql://app@db/app')).toBeUndefined()
  })

  it('a role whose password holds URL characters logs in through DATABASE_PASSWORD', async () => {
    const { url } = await fileDatabase()
    const role = `odd_${Date.now()}`
    const password = "p@ss:w/rd#?%41'"
    await adminQuery(url, `CREATE ROLE ${role} LOGIN PASSWORD '${password.replace(/'/g, "''")}'`)
    try {
      const host = new URL(url)
      const config = loadConfig({ DATABASE_URL: `postgresql://${role}@${host.host}${host.pathname}`, DATABASE_PASSWORD: password, MAIL_DISABLED: 'true' })
      const client = new pg.Client({ connectionString: config.DATABASE_URL })
      await client.connect()
      expect((await client.query('SELECT current_user AS user')).rows[0]).toEqual({ user: role })
      await client.end()
    } finally {
      await adminQuery(url, `DROP ROLE ${role}`)
    }
  })
})
