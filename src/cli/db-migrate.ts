// `npm run db:migrate`: applies pending migrations to DATABASE_URL or, when
// that is unset, to the embedded PostgreSQL the server uses in development.
import { migrate, withDatabase } from './context.js'

async function main(): Promise<void> {
  await withDatabase(async (config, embedded) => {
    const target = embedded ? `the embedded PostgreSQL in ${embedded.dataDir}` : `PostgreSQL at ${new URL(config.DATABASE_URL).host}`
    const applied = await migrate(config.DATABASE_URL)
    if (applied.length === 0) {
      console.log(`No pending migrations: ${target} is up to date.`)
      return
    }
    console.log(`Applied ${applied.length} migration${applied.length === 1 ? '' : 's'} to ${target}:`)
    for (const name of applied) console.log(`  ${name}`)
  })
}

main().catch((error: unknown) => {
  console.error(`Migrating failed: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
})
