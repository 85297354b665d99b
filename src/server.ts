// The process entry point: reads the configuration, starts the embedded
// PostgreSQL when no DATABASE_URL is given, applies pending migrations,
// builds the app exactly as the tests do, listens, and shuts down gracefully
// (finish in-flight requests, close the database, stop the embedded server).
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import app, { serverOptions } from './app.js'
import { type Config, isEmbedded, loadConfig } from './config.js'
import { type EmbeddedDatabase, startEmbeddedPostgres } from './db/embedded.js'
import { applyMigrations } from './db/migrations.js'

function fail(message: string): never {
  process.stderr.write(`\n  Cannot start: ${message}\n\n`)
  process.exit(1)
}

/** The one block a person reads at start: where the API and its docs are, which database, which keys. */
function banner(config: Config, port: number, embedded: EmbeddedDatabase | undefined, signing: string) {
  // On every interface, the address to type into a browser on this machine is localhost.
  const everywhere = config.HOST === '0.0.0.0' || config.HOST === '::'
  const host = everywhere ? 'localhost' : config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST
  const address = `http://${host}:${port}`
  const database = embedded
    ? `embedded PostgreSQL on 127.0.0.1:${embedded.port}, data in ${embedded.dataDir}`
    : `external PostgreSQL at ${new URL(config.DATABASE_URL ?? '').host}`
  const mail = config.MAIL_DISABLED
    ? 'off (MAIL_DISABLED)'
    : config.MAIL_URL
      ? `SMTP at ${new URL(config.MAIL_URL).host}`
      : `written to ${path.join(path.dirname(embedded?.dataDir ?? '.data/postgres'), 'mail')} (development mode: nothing is sent)`
  const lines = [
    '',
    `  Blog API listening on ${address}${everywhere ? ` (all interfaces, ${config.HOST})` : ''}`,
    `  Docs:      ${address}/docs`,
    `  Database:  ${database}`,
    `  Mail:      ${mail}`,
    `  Signing:   ${config.JWT_ALGORITHM} (${signing})`,
    ''
  ]
  process.stdout.write(lines.join('\n') + '\n')
}

async function main() {
  let config: Config
  try {
    config = loadConfig()
  } catch (error) {
    fail(`invalid configuration: ${(error as Error).message}`)
  }

  let embedded: EmbeddedDatabase | undefined
  if (isEmbedded(config)) {
    embedded = await startEmbeddedPostgres({
      dataDir: path.resolve(config.EMBEDDED_PG_DIR),
      persistent: true,
      port: config.EMBEDDED_PG_PORT
    })
    config = { ...config, DATABASE_URL: embedded.url }
  }
  const stopEmbedded = async () => {
    await embedded?.stop()
    embedded = undefined
  }

  try {
    if (config.MIGRATE_ON_START && config.DATABASE_URL) {
      const { applied } = await applyMigrations(config.DATABASE_URL)
      if (applied.length > 0) process.stdout.write(`  Applied migrations: ${applied.join(', ')}\n`)
    }
  } catch (error) {
    await stopEmbedded()
    fail(`migrations failed: ${(error as Error).message}`)
  }

  const fastify = Fastify(serverOptions(config))
  fastify.addHook('onClose', stopEmbedded)
  // Requests already in flight when shutdown begins still answer, but tell
  // keep-alive clients to go: their idle connection would otherwise hold the
  // server open until keepAliveTimeout (Node closes idle sockets only once,
  // when closing starts).
  let shuttingDown = false
  fastify.addHook('onSend', async (_request, reply) => {
    if (shuttingDown) reply.header('connection', 'close')
  })
  try {
    await fastify.register(app, {
      config,
      developmentDir: embedded ? path.dirname(embedded.dataDir) : undefined
    })
    await fastify.ready()
  } catch (error) {
    await fastify.close().catch(() => undefined)
    await stopEmbedded()
    fail((error as Error).message)
  }

  closeWithGrace({ delay: 15_000, logger: fastify.log }, async ({ signal, err }) => {
    if (err) fastify.log.error({ err }, 'shutting down after an error')
    else fastify.log.info({ signal }, 'shutting down')
    shuttingDown = true
    const reaper = setInterval(() => { fastify.server.closeIdleConnections() }, 100)
    try {
      await fastify.close()
    } finally {
      clearInterval(reaper)
    }
  })

  await fastify.listen({ host: config.HOST, port: config.PORT })
  banner(config, (fastify.server.address() as AddressInfo).port, embedded, fastify.signingKeys.source)
}

await main()
