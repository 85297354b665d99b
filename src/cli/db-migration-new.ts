// `npm run db:migration:new -- <name>`: writes a new migration with the SQL
// that brings the existing migrations to prisma/schema.prisma. Works offline:
// the migrations are replayed into a throwaway embedded PostgreSQL.
import { relative } from 'node:path'
import { createMigration } from '../db/migrations.js'

const USAGE = 'Usage: npm run db:migration:new -- <name>   (name: a-z, 0-9 and _, e.g. add_post_tags)'

async function main(): Promise<void> {
  const name = process.argv[2]
  if (name === undefined || process.argv.length > 3 || !/^[a-z0-9_]+$/.test(name)) {
    console.error(USAGE)
    process.exitCode = 1
    return
  }
  const created = await createMigration(name)
  if (created === undefined) {
    console.error('schema.prisma and the migrations agree; nothing to do.')
    process.exitCode = 1
    return
  }
  console.log(`Created ${relative(process.cwd(), created.path)}:\n`)
  console.log(created.sql)
  console.log('Review it, then apply it with `npm run db:migrate` (the server also applies it at start).')
}

main().catch((error: unknown) => {
  console.error(`Creating the migration failed: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
})
