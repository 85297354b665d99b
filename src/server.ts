// The process entry point: reads the configuration, starts the embedded
// PostgreSQL when no DATABASE_URL is given, applies pending migrations,
// builds the app exactly as the tests do, listens, and shuts down gracefully
// (finish in-flight requests, close the database, stop the embedded server).
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import app, { logStream, serverOptions } from './app.js'
import { type Config, ConfigError, isEmbedded, loadConfig, sessionDatabaseUrl } from './config.js'
import { explainConnectionError } from './db/connection-errors.js'
import { type EmbeddedDatabase, startEmbeddedPostgres } from './db/embedded.js'
import { applyMigrations } from './db/migrations.js'

/**
 * How long a shutdown may take: requests in flight finish, then connections
 * close. An orchestrator's grace period must be longer (docker-compose.yml's
 * stop_grace_period).
 */
const SHUTDOWN_GRACE_MS = 15_000

function fail(message: string): never {
  process.stderr.write(`\n  Cannot start: ${message}\n\n`)
  process.exit(1)
}

/** The one block a person reads at start: where the API and its docs are, which database, which keys. */
function banner(config: Config, port: number, embedded: EmbeddedDatabase | undefined, signing: string, metricsPort: number | undefined) {
  // On every interface, the address to type into a browser on this machine is localhost.
  const everywhere = config.HOST === '0.0.0.0' || config.HOST === '::'
  const host = everywhere ? 'localhost' : config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST
  const address = `http://${host}:${port}`
  const database = embedded
    ? `embedded PostgreSQL on 127.0.0.1:${embedded.port}, data in ${embedded.dataDir}` +
      (embedded.requestedDir
        ? `\n             (instead of ${embedded.requestedDir}, which the "postgres" user it runs as cannot reach)`
        : '')
    : `external PostgreSQL at ${new URL(config.DATABASE_URL ?? '').host}`
  const mail = config.MAIL_DISABLED
    ? 'off (MAIL_DISABLED)'
    : config.MAIL_URL
      ? `SMTP at ${new URL(config.MAIL_URL).host}`
      : `written to ${path.join(path.dirname(embedded?.dataDir ?? '.data/postgres'), 'mail')} (development mode: nothing is sent)`
  const bearer = config.METRICS_TOKEN ? ' (bearer METRICS_TOKEN)' : ''
  const metrics = metricsPort !== undefined
    ? `http://${host}:${metricsPort}/metrics${bearer}`
    : config.METRICS_TOKEN ? `${address}/metrics${bearer}` : undefined
  const lines = [
    '',
    `  Blog API listening on ${address}${everywhere ? ` (all interfaces, ${config.HOST})` : ''}`,
    config.DOCS_ENABLED ? `  Docs:      ${address}/docs` : '  Docs:      off (DOCS_ENABLED=false)',
    `  Database:  ${database}`,
    `  Mail:      ${mail}`,
    `  Signing:   ${config.JWT_ALGORITHM} (${signing})`,
    ...(metrics ? [`  Metrics:   ${metrics}`] : []),
    ''
  ]
  process.stdout.write(lines.join('\n') + '\n')
}

/** Why `listen` failed, in words a person can act on. */
function listenProblem(error: unknown, variable: string, host: string, port: number): string {
  const code = (error as NodeJS.ErrnoException).code
  if (code === 'EADDRINUSE') {
    return `port ${port} on ${host} is already taken by another process. Stop that process, or choose another port: ${variable}=${port + 1} npm start`
  }
  if (code === 'EACCES') return `port ${port} needs privileges this process does not have; choose one above 1023 with ${variable}`
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') return `HOST ${host} is not an address of this machine`
  return (error as Error).message
}

async function main() {
  let config: Config
  try {
    config = loadConfig()
  } catch (error) {
    fail(error instanceof ConfigError ? `invalid configuration:\n    ${error.problems.join('\n    ')}` : (error as Error).message)
  }
  // In development mode a generated signing key is kept beside the embedded database's folder.
  const developmentDir = isEmbedded(config) ? path.dirname(path.resolve(config.EMBEDDED_PG_DIR)) : undefined

  let embedded: EmbeddedDatabase | undefined
  if (isEmbedded(config)) {
    try {
      embedded = await startEmbeddedPostgres({
        dataDir: path.resolve(config.EMBEDDED_PG_DIR),
        persistent: true,
        port: config.EMBEDDED_PG_PORT
      })
    } catch (error) {
      fail(`the embedded PostgreSQL did not start: ${(error as Error).message}`)
    }
    config = { ...config, DATABASE_URL: embedded.url }
  }
  const databaseUrl = config.DATABASE_URL ?? ''
  // Migrations take a session-level lock: behind a transaction pooler they go
  // to the server itself.
  const migrationUrl = sessionDatabaseUrl(config) ?? databaseUrl
  const migrationVariable = config.DATABASE_DIRECT_URL === undefined ? 'DATABASE_URL' : 'DATABASE_DIRECT_URL'
  const stopEmbedded = async () => {
    await embedded?.stop()
    embedded = undefined
  }

  const logs = config.LOG_PRETTY ? undefined : logStream()
  const fastify = Fastify(serverOptions(config, logs))
  fastify.addHook('onClose', stopEmbedded)
  const stop = async (message: string): Promise<never> => {
    await fastify.close().catch(() => undefined)
    await stopEmbedded()
    fail(message)
  }
  // Requests already in flight when shutdown begins still answer, but tell
  // keep-alive clients to go: their idle connection would otherwise hold the
  // server open until keepAliveTimeout (Node closes idle sockets only once,
  // when closing starts).
  let shuttingDown = false
  fastify.addHook('onSend', async (_request, reply) => {
    if (shuttingDown) reply.header('connection', 'close')
  })

  // Loading the plugins checks the rest of the configuration (signing keys,
  // the first admin's password, Redis), all before the database is changed:
  // a start refused for a bad setting leaves it as it was.
  try {
    await fastify.register(app, { config, developmentDir })
  } catch (error) {
    await stop((error as Error).message)
  }

  try {
    if (config.MIGRATE_ON_START) {
      const { applied } = await applyMigrations(migrationUrl)
      if (applied.length > 0) process.stdout.write(`  Applied migrations: ${applied.join(', ')}\n`)
    }
  } catch (error) {
    await stop(explainConnectionError(error, migrationUrl, migrationVariable) ?? `migrations failed: ${(error as Error).message}`)
  }

  try {
    await fastify.ready()
  } catch (error) {
    await stop(explainConnectionError(error, databaseUrl) ?? (error as Error).message)
  }

  closeWithGrace({ delay: SHUTDOWN_GRACE_MS, logger: fastify.log }, async ({ signal, err }) => {
    if (err) fastify.log.error({ err }, 'shutting down after an error')
    else fastify.log.info({ signal }, 'shutting down')
    logs?.flush()
    shuttingDown = true
    const reaper = setInterval(() => { fastify.server.closeIdleConnections() }, 100)
    try {
      await fastify.close()
    } finally {
      clearInterval(reaper)
    }
  })

  try {
    await fastify.listen({ host: config.HOST, port: config.PORT })
  } catch (error) {
    await stop(listenProblem(error, 'PORT', config.HOST, config.PORT))
  }
  let metricsPort: number | undefined
  try {
    metricsPort = await fastify.metrics.listen()
  } catch (error) {
    await stop(listenProblem(error, 'METRICS_PORT', config.HOST, config.METRICS_PORT ?? 0))
  }
  banner(config, (fastify.server.address() as AddressInfo).port, embedded, fastify.signingKeys.source, metricsPort)
}

await main()
