// Configuration: every setting comes from the environment (and a `.env` file),
// is validated once at start, and is handed to the app as one typed object.
// `.env.example` documents each variable; keep the two in step.
//
// An empty variable counts as unset: Compose, Kubernetes and shell scripts
// pass `VAR=` for a variable they were not given, and that must mean "use the
// default", not "refuse to start".
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { resolve } from 'node:path'
import { parseEnv } from 'node:util'
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import envSchema from 'env-schema'
import addressparser from 'nodemailer/lib/addressparser'

const Seconds = (defaultValue: number, description: string) =>
  Type.Integer({ minimum: 1, default: defaultValue, description })

export const ConfigSchema = Type.Object({
  HOST: Type.String({ default: '0.0.0.0' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
    { default: 'info' }
  ),
  /** Human-readable, coloured log lines (pino-pretty, a development dependency) instead of JSON. */
  LOG_PRETTY: Type.Boolean({ default: false }),
  /** Behind proxies: how many hops, or which proxy addresses, to trust for the client address. */
  TRUST_PROXY: Type.String({ default: 'false' }),
  /** The address clients reach the service at: links in emails, cookies' Secure flag, the default token issuer. */
  PUBLIC_URL: Type.String({ minLength: 1, default: 'http://localhost:3000' }),
  /** Seconds a request may take to arrive (headers and body), and a connection may sit idle. */
  REQUEST_TIMEOUT: Type.Integer({ minimum: 1, maximum: 600, default: 30 }),

  DATABASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  /**
   * The server itself when DATABASE_URL goes through a transaction pooler
   * (PgBouncer): for what needs a session (the LISTEN connection, migrations
   * and their lock).
   */
  DATABASE_DIRECT_URL: Type.Optional(Type.String({ minLength: 1 })),
  /** Named prepared statements on the query pool; unset: on, unless DATABASE_DIRECT_URL says the pool is pooled. */
  DATABASE_PREPARED_STATEMENTS: Type.Optional(Type.Boolean()),
  /** The password for DATABASE_URL (and DATABASE_DIRECT_URL), taken as it is (no percent-encoding), when the URL carries none. */
  DATABASE_PASSWORD: Type.Optional(Type.String({ minLength: 1 })),
  DATABASE_POOL_SIZE: Type.Integer({ minimum: 1, maximum: 200, default: 10 }),
  EMBEDDED_PG_DIR: Type.String({ default: '.data/postgres' }),
  EMBEDDED_PG_PORT: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  MIGRATE_ON_START: Type.Boolean({ default: true }),

  /** The `iss` of its tokens; unset: PUBLIC_URL. */
  JWT_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
  JWT_AUDIENCE: Type.String({ minLength: 1, default: 'blog-api' }),
  JWT_ALGORITHM: Type.Union([Type.Literal('EdDSA'), Type.Literal('ES256'), Type.Literal('HS256')], {
    default: 'EdDSA'
  }),
  /** PEM text, or a path to a PEM file, of the signing key (EdDSA, ES256). */
  JWT_PRIVATE_KEY: Type.Optional(Type.String({ minLength: 1 })),
  /** Public keys of earlier signing keys (PEM text or paths, comma-separated) that still verify. */
  JWT_PREVIOUS_PUBLIC_KEYS: Type.Optional(Type.String()),
  /** HS256 secret, at least 32 bytes. */
  JWT_SECRET: Type.Optional(Type.String({ minLength: 1 })),
  /** Earlier HS256 secrets (comma-separated) that still verify. */
  JWT_PREVIOUS_SECRETS: Type.Optional(Type.String()),
  JWT_CLOCK_TOLERANCE: Type.Integer({ minimum: 0, maximum: 300, default: 5 }),
  /** Tokens longer than this many characters are refused before any parsing. */
  JWT_MAX_LENGTH: Type.Integer({ minimum: 256, maximum: 16384, default: 4096 }),

  ACCESS_TOKEN_TTL: Seconds(900, 'Lifetime of an access token'),
  /** A browser's sign-in at the authorization endpoint lasts this long (it lets the user skip the form). */
  SIGN_IN_SESSION_TTL: Seconds(8 * 3600, 'Lifetime of a browser sign-in at the authorization endpoint'),
  SESSION_IDLE_TTL: Seconds(14 * 24 * 3600, 'A session unused for this long ends'),
  SESSION_MAX_AGE: Seconds(30 * 24 * 3600, 'A session ends this long after login, whatever its use'),
  /**
   * A retry of the latest refresh within this many seconds gets the same new
   * refresh token again (its answer was lost); 0: any reuse ends the session.
   */
  REFRESH_REUSE_GRACE: Type.Integer({ minimum: 0, maximum: 300, default: 30 }),
  /** Keys the service's HMACs (refresh-token successors, device cookies), at least 32 bytes. */
  APP_SECRET: Type.Optional(Type.String({ minLength: 1 })),
  /** Earlier APP_SECRET values (comma-separated) whose device cookies are still honoured. */
  APP_PREVIOUS_SECRETS: Type.Optional(Type.String()),
  /** Encrypts second-factor secrets at rest (AES-256-GCM): 32 bytes, base64 or hex. */
  MFA_ENCRYPTION_KEY: Type.Optional(Type.String({ minLength: 1 })),
  /** Earlier MFA_ENCRYPTION_KEY values (comma-separated) that still decrypt, until `npm run mfa:reencrypt`. */
  MFA_PREVIOUS_ENCRYPTION_KEYS: Type.Optional(Type.String()),
  /** The name authenticator apps show next to the account. */
  MFA_ISSUER: Type.String({ minLength: 1, maxLength: 100, pattern: '^[^:]+$', default: 'Blog API' }),

  ARGON2_MEMORY_KIB: Type.Integer({ minimum: 1024, default: 65536 }),
  ARGON2_TIME_COST: Type.Integer({ minimum: 1, default: 3 }),
  ARGON2_PARALLELISM: Type.Integer({ minimum: 1, maximum: 16, default: 4 }),
  /** Password hashes computed at once; more wait their turn. 0: one per core. */
  ARGON2_CONCURRENCY: Type.Integer({ minimum: 0, maximum: 64, default: 0 }),
  /** How many nice steps below the service its hashing process runs; 0: the same priority. */
  ARGON2_NICE: Type.Integer({ minimum: 0, maximum: 19, default: 10 }),
  /** Linux: the hashing process's threads run only when nothing else wants the CPU (SCHED_IDLE). */
  ARGON2_IDLE_SCHEDULING: Type.Boolean({ default: true }),
  /** Memory for recently read posts (MiB); 0: every read asks the database. */
  POST_CACHE_MB: Type.Integer({ minimum: 0, maximum: 4096, default: 32 }),
  POST_CACHE_TTL: Seconds(300, 'A cached post is read again from the database after this long'),
  PASSWORD_MIN_LENGTH: Type.Integer({ minimum: 8, maximum: 64, default: 12 }),

  /** The name emails and pages give the service. */
  PRODUCT_NAME: Type.String({ minLength: 1, maxLength: 100, default: 'Blog API' }),
  /** SMTP server of outgoing mail: smtp://user:pass@host:port or smtps://… Unset: .eml files in development, required otherwise. */
  MAIL_URL: Type.Optional(Type.String({ minLength: 1 })),
  /** The From of every email ("Name <address>" or an address); required with MAIL_URL. */
  MAIL_FROM: Type.Optional(Type.String({ minLength: 3, maxLength: 300 })),
  /** No email at all: the email routes are off (and absent from the docs). */
  MAIL_DISABLED: Type.Boolean({ default: false }),
  MAIL_TIMEOUT: Seconds(30, 'Longest wait for the mail server at each step of a delivery'),
  MAIL_RETRY_DELAY: Seconds(30, 'First wait after a temporary delivery failure; each further one doubles it'),
  /** Password logins of accounts whose email is not verified are refused (after a correct password). */
  REQUIRE_VERIFIED_EMAIL: Type.Boolean({ default: false }),
  RESET_TOKEN_TTL: Type.Integer({ minimum: 60, maximum: 24 * 3600, default: 1800, description: 'Lifetime of a password reset link, seconds' }),
  /** Where reset and verification links point instead of the service's own pages; must contain {token}. */
  RESET_PASSWORD_URL: Type.Optional(Type.String({ minLength: 1 })),
  VERIFY_EMAIL_URL: Type.Optional(Type.String({ minLength: 1 })),

  /** Requests per address per window on /auth/token and /auth/signup. */
  AUTH_RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 20 }),
  AUTH_RATE_LIMIT_WINDOW: Seconds(60, 'Window of the auth rate limit'),
  /** Writes (posts, profile changes, client registrations) per account per window. */
  WRITE_RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 60 }),
  WRITE_RATE_LIMIT_WINDOW: Seconds(60, 'Window of the per-account write limit'),
  /**
   * Failed logins before a lockout: of one account from one address (or /64),
   * of one account on one trusted device, and of one current-password check per account.
   */
  LOGIN_LOCKOUT_THRESHOLD: Type.Integer({ minimum: 1, maximum: 100, default: 5 }),
  /** Failed logins of one account from untrusted devices, all addresses together, before those are locked out. */
  LOGIN_LOCKOUT_ACCOUNT_THRESHOLD: Type.Integer({ minimum: 1, maximum: 1000, default: 20 }),
  /** How long a device stays trusted for an account after a successful login (seconds; 180 days). */
  DEVICE_COOKIE_TTL: Seconds(180 * 24 * 3600, 'Lifetime of a device cookie'),
  LOGIN_LOCKOUT_DELAY: Seconds(30, 'First lockout; each further failure doubles it'),
  LOGIN_LOCKOUT_MAX_DELAY: Seconds(900, 'Longest lockout'),
  LOGIN_LOCKOUT_WINDOW: Seconds(900, 'Failures are forgotten this long after the last one (and its lockout)'),
  /** Shared store of rate limits and lockouts for several instances; unset: in memory. */
  REDIS_URL: Type.Optional(Type.String({ minLength: 1 })),
  /** Browser origins allowed to call the API (comma-separated); empty: no CORS headers. */
  CORS_ORIGINS: Type.String({ default: '' }),
  /** The largest body any route accepts (a post); every other route has a smaller limit of its own. */
  BODY_LIMIT: Type.Integer({ minimum: 1024, default: 256 * 1024 }),

  /** Load shedding: above any of these, requests get 503 with Retry-After (0: that check is off). */
  PRESSURE_MAX_EVENT_LOOP_DELAY: Type.Integer({ minimum: 0, default: 1000, description: 'Milliseconds of mean event loop delay' }),
  PRESSURE_MAX_HEAP_BYTES: Type.Integer({ minimum: 0, default: 0 }),
  PRESSURE_MAX_RSS_BYTES: Type.Integer({ minimum: 0, default: 0 }),
  /** How often the measures are taken, in milliseconds. */
  PRESSURE_SAMPLE_INTERVAL: Type.Integer({ minimum: 10, maximum: 60_000, default: 1000 }),
  /** Seconds a shed client is told to wait. */
  PRESSURE_RETRY_AFTER: Seconds(10, 'Retry-After of a 503 under pressure'),

  /** The docs page (/docs) and the OpenAPI document (/docs/json). */
  DOCS_ENABLED: Type.Boolean({ default: true }),
  /** Prometheus metrics on a port of their own (0: any free port). */
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  /** Bearer token that /metrics requires; without METRICS_PORT, /metrics is served on PORT behind it. */
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16 })),

  /** Created (or promoted) at start when set and no admin exists yet. */
  ADMIN_EMAIL: Type.Optional(Type.String({ minLength: 3 })),
  ADMIN_PASSWORD: Type.Optional(Type.String({ minLength: 1 }))
})

export type Config = Omit<Static<typeof ConfigSchema>, 'JWT_ISSUER'> & { JWT_ISSUER: string }

/** CORS_ORIGINS as a list of exact origins. */
export function corsOrigins(config: Config): string[] {
  return config.CORS_ORIGINS.split(',')
    .map((origin) => origin.trim().replace(/\/+$/, ''))
    .filter(Boolean)
}

/** A configuration that cannot be used: one line per variable, each naming it and what it accepts. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'))
    this.name = 'ConfigError'
  }
}

/** Variables whose values are never repeated in a message: they may hold secrets. */
const SECRET_VARIABLE = /SECRET|PASSWORD|_TOKEN$|_KEYS?$|_URL$/

/**
 * Reads and validates the configuration; throws a ConfigError naming each
 * bad variable. With the real environment, a `.env` file in the working
 * directory fills in what the environment leaves unset.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const data = env === process.env ? { ...withoutEmpty(readDotenv()), ...withoutEmpty(env) } : withoutEmpty(env)
  let config: Config | undefined
  const problems: string[] = []
  try {
    const parsed = envSchema<Static<typeof ConfigSchema>>({ schema: ConfigSchema, data, env: false, dotenv: false })
    // Unset, the public URL follows PORT (`PORT=3001 npm start` gets links and an issuer on 3001); 0 is any port.
    const publicUrl = data.PUBLIC_URL === undefined && parsed.PORT !== 0 ? { PUBLIC_URL: `http://localhost:${parsed.PORT}` } : {}
    // The issuer is the public URL unless said otherwise, overrides included.
    const merged = { ...parsed, ...publicUrl, ...overrides }
    config = { ...merged, JWT_ISSUER: overrides.JWT_ISSUER ?? parsed.JWT_ISSUER ?? merged.PUBLIC_URL }
  } catch (error) {
    problems.push(...schemaProblems(error, data))
  }
  try {
    trustProxy({ TRUST_PROXY: config?.TRUST_PROXY ?? data.TRUST_PROXY ?? 'false' })
  } catch (error) {
    problems.push((error as Error).message)
  }
  problems.push(...connectionProblems({ ...data, ...overrides }))
  if (config) {
    try {
      checkMailSettings(config)
    } catch (error) {
      problems.push((error as Error).message)
    }
  }
  if (config?.LOG_PRETTY && !resolvable('pino-pretty')) {
    problems.push('LOG_PRETTY=true needs pino-pretty, a development dependency that this install lacks: leave LOG_PRETTY unset')
  }
  if (config === undefined || problems.length > 0) throw new ConfigError(problems)
  return withDatabasePassword(config)
}

function readDotenv(): NodeJS.Dict<string> {
  try {
    return parseEnv(readFileSync(resolve('.env'), 'utf8'))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw new ConfigError([`.env cannot be read: ${(error as Error).message}`])
  }
}

function withoutEmpty(env: Record<string, string | undefined>): Record<string, string> {
  const kept: Record<string, string> = {}
  for (const [name, value] of Object.entries(env)) if (value !== undefined && value.trim() !== '') kept[name] = value
  return kept
}

interface AjvIssue { instancePath: string, keyword: string, message?: string }

/** Ajv's errors, one line per variable, saying what the variable accepts rather than which keyword failed. */
function schemaProblems(error: unknown, data: Record<string, string>): string[] {
  const issues = (error as { errors?: AjvIssue[] }).errors
  if (!Array.isArray(issues)) return [(error as Error).message]
  const names = [...new Set(issues.map((issue) => issue.instancePath.replace(/^\//, '')))]
  return names.map((name) => {
    const schema = (ConfigSchema.properties as Record<string, TSchema | undefined>)[name]
    const accepted = schema ? acceptedValues(schema) : undefined
    const value = data[name]
    const got = value === undefined ? '' : SECRET_VARIABLE.test(name) ? ' (the value given is not)' : ` (got "${value.slice(0, 60)}")`
    if (accepted) return `${name} must be ${accepted}${got}`
    const first = issues.find((issue) => issue.instancePath === `/${name}`)
    return `${name} ${first?.message ?? 'is invalid'}${got}`
  })
}

/** What a variable's schema accepts, in words. */
function acceptedValues(schema: TSchema): string | undefined {
  const options = (schema.anyOf as TSchema[] | undefined)?.map((option) => option.const as unknown)
  if (options?.every((option) => typeof option === 'string')) return `one of ${options.join(', ')}`
  if (schema.type === 'boolean') return 'true or false'
  if (schema.type === 'integer') {
    const { minimum, maximum } = schema as { minimum?: number, maximum?: number }
    if (minimum !== undefined && maximum !== undefined) return `a whole number from ${minimum} to ${maximum}`
    if (minimum !== undefined) return `a whole number, at least ${minimum}`
    return 'a whole number'
  }
  if (schema.type === 'string' && typeof schema.minLength === 'number' && schema.minLength > 1) {
    return `at least ${schema.minLength} characters long`
  }
  return undefined
}

interface ConnectionSettings {
  DATABASE_URL?: string
  DATABASE_DIRECT_URL?: string
  DATABASE_PASSWORD?: string
  REDIS_URL?: string
}

/** What the schema alone cannot say: the shape of the URLs, and a password given twice or for nothing. */
function connectionProblems(settings: ConnectionSettings): string[] {
  const { DATABASE_URL: databaseUrl, DATABASE_DIRECT_URL: directUrl, DATABASE_PASSWORD: password, REDIS_URL: redisUrl } = settings
  const problems: string[] = []
  if (databaseUrl !== undefined) {
    const problem = databaseUrlProblem(databaseUrl)
    if (problem) problems.push(`DATABASE_URL ${problem}`)
    else if (password !== undefined && new URL(databaseUrl).password !== '') {
      problems.push('DATABASE_PASSWORD is set, but DATABASE_URL has a password too: give it in one of them')
    }
  } else if (password !== undefined) {
    problems.push('DATABASE_PASSWORD is set without DATABASE_URL: it is the password of the server that DATABASE_URL names')
  }
  if (directUrl !== undefined) {
    const problem = databaseUrlProblem(directUrl)
    if (problem) problems.push(`DATABASE_DIRECT_URL ${problem}`)
    else if (databaseUrl === undefined) {
      problems.push('DATABASE_DIRECT_URL is set without DATABASE_URL: it is the session connection that goes with a pooled DATABASE_URL')
    }
  }
  if (redisUrl !== undefined && !/^rediss?:$/.test(parsedUrl(redisUrl)?.protocol ?? '')) {
    problems.push('REDIS_URL must be a Redis URL such as redis://localhost:6379 (or rediss:// for TLS)')
  }
  return problems
}

const DATABASE_URL_EXAMPLE = 'postgresql://user:password@host:5432/database'

function databaseUrlProblem(value: string): string | undefined {
  const url = parsedUrl(value)
  if (!url) return `must be a PostgreSQL URL such as ${DATABASE_URL_EXAMPLE}, and the value given is not a URL`
  if (url.protocol !== 'postgresql:' && url.protocol !== 'postgres:') {
    return `must start with postgresql:// (got ${url.protocol}//), as in ${DATABASE_URL_EXAMPLE}`
  }
  if (url.hostname === '') return `names no host: write it as ${DATABASE_URL_EXAMPLE}`
  try {
    decodeURIComponent(url.password)
    decodeURIComponent(url.username)
  } catch {
    return 'has a user or password with a "%" that is not percent-encoding: write it as %25, or give the password in DATABASE_PASSWORD'
  }
  return undefined
}

function resolvable(specifier: string): boolean {
  try {
    import.meta.resolve(specifier)
    return true
  } catch {
    return false
  }
}

function parsedUrl(value: string): URL | undefined {
  try {
    return new URL(value)
  } catch {
    return undefined
  }
}

/**
 * DATABASE_URL with DATABASE_PASSWORD in it, percent-encoded, so a password
 * may hold any character (`@`, `/`, `#`, `%`, ...) without the person who
 * sets it encoding anything. DATABASE_DIRECT_URL gets it too when it carries
 * no password of its own (the pooler usually checks the server's password).
 */
function withDatabasePassword(config: Config): Config {
  const password = config.DATABASE_PASSWORD
  if (config.DATABASE_URL === undefined || password === undefined) return config
  const withPassword = (value: string): string => {
    const url = new URL(value)
    if (url.password === '') url.password = encodeURIComponent(password)
    return url.toString()
  }
  return {
    ...config,
    DATABASE_URL: withPassword(config.DATABASE_URL),
    ...(config.DATABASE_DIRECT_URL === undefined ? {} : { DATABASE_DIRECT_URL: withPassword(config.DATABASE_DIRECT_URL) })
  }
}

/** Whether the service runs its own PostgreSQL (development mode). */
export function isEmbedded(config: Config): boolean {
  return config.DATABASE_URL === undefined
}

/**
 * The URL of a connection with a session of its own: LISTEN, migrations and
 * their advisory lock do not work through a transaction pooler.
 */
export function sessionDatabaseUrl(config: Config): string | undefined {
  return config.DATABASE_DIRECT_URL ?? config.DATABASE_URL
}

/**
 * Whether queries use named prepared statements (parsed and planned once
 * per connection). PgBouncer in transaction mode hands each transaction
 * another server connection, where the statement does not exist (before
 * PgBouncer 1.21 and its max_prepared_statements), so a pooled
 * DATABASE_URL gets unnamed ones unless told otherwise.
 */
export function preparedStatements(config: Config): boolean {
  return config.DATABASE_PREPARED_STATEMENTS ?? config.DATABASE_DIRECT_URL === undefined
}

/**
 * TRUST_PROXY as Fastify's `trustProxy` option: `false`, a hop count, or the
 * proxies' addresses. `true` (trust every hop) is refused: with it, any
 * client picks its own address by sending X-Forwarded-For, and with it the
 * rate limits, the lockout and the audit trail would believe it.
 */
export function trustProxy(config: Pick<Config, 'TRUST_PROXY'>): false | number | string {
  const value = config.TRUST_PROXY.trim()
  if (value === 'false' || value === '' || value === '0') return false
  if (/^\d+$/.test(value)) return Number(value)
  if (value.toLowerCase() === 'true') {
    throw new Error(
      'TRUST_PROXY=true would let any client choose its address with X-Forwarded-For; give the number of proxies in front of the service (e.g. 1) or their addresses (e.g. 10.0.0.5,10.0.0.6 or 10.0.0.0/24)'
    )
  }
  const invalid = value.split(',').map((item) => item.trim()).find((item) => !isAddressOrRange(item))
  if (invalid !== undefined) {
    throw new Error(`TRUST_PROXY: "${invalid.slice(0, 60)}" is not an address or CIDR range; give false, a hop count, or proxy addresses`)
  }
  return value
}

/** An IPv4/IPv6 address, optionally with a /prefix, or one of proxy-addr's names (loopback, linklocal, uniquelocal). */
function isAddressOrRange(item: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(item)) return true
  const [address = '', prefix, ...rest] = item.split('/')
  if (rest.length > 0 || isIP(address) === 0) return false
  if (prefix === undefined) return true
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (isIP(address) === 4 ? 32 : 128)
}

/**
 * The email settings make sense together: a valid SMTP URL with a sender, or
 * email turned off explicitly; outside development mode, never neither (mail
 * that nobody sends would be lost without a trace).
 */
export function checkMailSettings(config: Config): void {
  const { MAIL_URL, MAIL_FROM, MAIL_DISABLED } = config
  if (MAIL_DISABLED) {
    if (MAIL_URL) throw new Error('MAIL_DISABLED=true and MAIL_URL contradict each other; set one of them')
    if (config.REQUIRE_VERIFIED_EMAIL) throw new Error('REQUIRE_VERIFIED_EMAIL=true needs email, but MAIL_DISABLED=true turns it off')
  } else if (MAIL_URL) {
    let url: URL | undefined
    try {
      url = new URL(MAIL_URL)
    } catch {
      url = undefined
    }
    if (!url || !['smtp:', 'smtps:'].includes(url.protocol) || !url.hostname) {
      throw new Error('MAIL_URL must be smtp://[user:password@]host[:port] or smtps://…')
    }
    const senders = MAIL_FROM ? addressparser(MAIL_FROM, { flatten: true }) : []
    if (senders.length !== 1 || !/^[^\s@]+@[^\s@]+$/.test(senders[0]?.address ?? '')) {
      throw new Error('MAIL_FROM is required with MAIL_URL: one sender, e.g. "Blog API <no-reply@example.com>"')
    }
  } else if (!isEmbedded(config)) {
    throw new Error('MAIL_URL is required outside development mode (smtp://user:password@host:port), or MAIL_DISABLED=true to run without email')
  }
  for (const name of ['RESET_PASSWORD_URL', 'VERIFY_EMAIL_URL'] as const) {
    const value = config[name]
    if (value !== undefined && (!value.includes('{token}') || !/^https?:\/\/[^/]/.test(value))) {
      throw new Error(`${name} must be an http(s) URL containing {token}, e.g. https://app.example.com/reset?token={token}`)
    }
  }
}
