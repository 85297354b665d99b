// `npm run db:migrate`: applies pending migrations to DATABASE_DIRECT_URL or
// DATABASE_URL (migrations take a session-level lock, so not through a
// transaction pooler) or, when both are unset, to the embedded PostgreSQL
// the server uses in development.
import 'dotenv/config'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startEmbeddedPostgres } from '../db/embedded.js'
import { applyMigrations } from '../db/migrations.js'

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

async function main(): Promise<void> {
  const databaseUrl = process.env.DATABASE_DIRECT_URL || process.env.DATABASE_URL
  if (databaseUrl !== undefined && databaseUrl !== '') {
    report(await applyMigrations(databaseUrl), `PostgreSQL at ${new URL(databaseUrl).host}`)
    return
  }
  const embedded = await startEmbeddedPostgres({
    dataDir: resolve(process.env.EMBEDDED_PG_DIR ?? resolve(projectRoot, '.data', 'postgres')),
    persistent: true,
    port: Number(process.env.EMBEDDED_PG_PORT) || undefined
  })
  try {
    report(await applyMigrations(embedded.url), `the embedded PostgreSQL in ${embedded.dataDir}`)
  } finally {
    await embedded.stop()
  }
}

function report({ applied }: { applied: string[] }, target: string): void {
  if (applied.length === 0) {
    console.log(`No pending migrations: ${target} is up to date.`)
    return
  }
  console.log(`Applied ${applied.length} migration${applied.length === 1 ? '' : 's'} to ${target}:`)
  for (const name of applied) console.log(`  ${name}`)
}

main().catch((error: unknown) => {
  console.error(`Migrating failed: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
})
