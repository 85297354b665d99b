// `npm run db:reset`: back to an empty database with every migration applied,
// for a developer whose local schema experiment went wrong. Drops the URL's
// schema (`?schema=`, else public) with everything in it, recreates it, and
// applies the migrations again.
import pg from 'pg'
import { applyMigrations } from './migrations.js'

/** Empties the database's schema and migrates it; answers the migrations applied. */
export async function resetDatabase(databaseUrl: string): Promise<string[]> {
  const schema = new URL(databaseUrl).searchParams.get('schema') ?? 'public'
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000 })
  client.on('error', () => {}) // a dropped connection surfaces through the queries below
  await client.connect()
  try {
    const name = client.escapeIdentifier(schema)
    await client.query(`DROP SCHEMA IF EXISTS ${name} CASCADE; CREATE SCHEMA ${name}`)
  } finally {
    await client.end()
  }
  return (await applyMigrations(databaseUrl)).applied
}
