// For command-line tools: the configuration and a ready app (never listening)
// on the same database the server would use, embedded or external, built in
// the server's order: the whole configuration is checked before migrations.
import path from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import app, { serverOptions } from '../app.js'
import { type Config, isEmbedded, loadConfig } from '../config.js'
import { explainConnectionError } from '../db/connection-errors.js'
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../db/embedded.js'
import { applyMigrations } from '../db/migrations.js'

/** The configuration, and the database it names (starting the embedded one when DATABASE_URL is unset). */
export async function withDatabase<T>(
  work: (config: Config & { DATABASE_URL: string }, embedded: EmbeddedDatabase | undefined) => Promise<T>,
  overrides: Partial<Config> = {}
): Promise<T> {
  const config = loadConfig(process.env, overrides)
  if (!isEmbedded(config) && config.DATABASE_URL !== undefined) return await work({ ...config, DATABASE_URL: config.DATABASE_URL }, undefined)
  const embedded = await startEmbeddedPostgres({ dataDir: path.resolve(config.EMBEDDED_PG_DIR), persistent: true, port: config.EMBEDDED_PG_PORT })
  try {
    return await work({ ...config, DATABASE_URL: embedded.url }, embedded)
  } finally {
    await embedded.stop()
  }
}

/** Applies pending migrations, with a message that names the variable when the database cannot be reached. */
export async function migrate(databaseUrl: string): Promise<string[]> {
  try {
    return (await applyMigrations(databaseUrl)).applied
  } catch (error) {
    throw new Error(explainConnectionError(error, databaseUrl) ?? (error as Error).message, { cause: error })
  }
}

/** Runs `work` with a ready app, then closes it (and the embedded database). */
export async function withApp<T>(work: (fastify: FastifyInstance) => Promise<T>): Promise<T> {
  return await withDatabase(async (config, embedded) => {
    const developmentDir = embedded ? path.dirname(path.resolve(config.EMBEDDED_PG_DIR)) : undefined
    const fastify = Fastify(serverOptions(config))
    try {
      await fastify.register(app, { config, developmentDir })
      if (config.MIGRATE_ON_START) await migrate(config.DATABASE_URL)
      await fastify.ready()
      return await work(fastify)
    } finally {
      await fastify.close()
    }
  }, { LOG_LEVEL: 'warn' })
}
