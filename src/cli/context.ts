// For command-line tools: the configuration and a ready app (never listening)
// on the same database the server would use, embedded or external.
import path from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import app, { serverOptions } from '../app.js'
import { isEmbedded, loadConfig, sessionDatabaseUrl } from '../config.js'
import { startEmbeddedPostgres } from '../db/embedded.js'
import { applyMigrations } from '../db/migrations.js'

/** Runs `work` with a ready app, then closes it (and the embedded database). */
export async function withApp<T>(work: (fastify: FastifyInstance) => Promise<T>): Promise<T> {
  let config = loadConfig(process.env, { LOG_LEVEL: 'warn' })
  const embedded = isEmbedded(config)
    ? await startEmbeddedPostgres({ dataDir: path.resolve(config.EMBEDDED_PG_DIR), persistent: true, port: config.EMBEDDED_PG_PORT })
    : undefined
  if (embedded) config = { ...config, DATABASE_URL: embedded.url }
  const fastify = Fastify(serverOptions(config))
  try {
    const migrationUrl = sessionDatabaseUrl(config)
    if (config.MIGRATE_ON_START && migrationUrl) await applyMigrations(migrationUrl)
    await fastify.register(app, { config, developmentDir: embedded ? path.dirname(embedded.dataDir) : undefined })
    await fastify.ready()
    return await work(fastify)
  } finally {
    await fastify.close()
    await embedded?.stop()
  }
}
