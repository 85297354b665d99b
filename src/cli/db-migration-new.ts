// `npm run db:migration:new -- <name>`: writes a new migration with the SQL
// that brings the existing migrations to prisma/schema.prisma, then
// regenerates the Prisma client so the code sees the new schema at once.
// Works offline: the migrations are replayed into a throwaway embedded
// PostgreSQL.
import { spawnSync } from 'node:child_process'
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
  // The same command as `npm run db:generate`, which is also how to regenerate by hand.
  const generated = spawnSync('npm', ['run', '--silent', 'db:generate'], { stdio: 'inherit' })
  if (generated.status !== 0) {
    console.error('Regenerating the Prisma client failed; run `npm run db:generate` once the schema is fixed.')
    process.exitCode = 1
    return
  }
  console.log('\nRegenerated the Prisma client (src/generated/prisma).')
  console.log('Review the migration, then apply it with `npm run db:migrate` (the server also applies it at start).')
}

main().catch((error: unknown) => {
  console.error(`Creating the migration failed: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
})
