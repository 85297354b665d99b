// `npm run db:check` (run by CI): fails when prisma/schema.prisma and the
// migrations disagree, that is when a schema change has no migration yet.
import { schemaDrift } from '../db/migrations.js'

async function main(): Promise<void> {
  const sql = await schemaDrift()
  if (sql === '') {
    console.log('schema.prisma and the migrations agree.')
    return
  }
  console.error('schema.prisma and the migrations disagree. The migrations lack this SQL:\n')
  console.error(sql)
  console.error('Create the migration with `npm run db:migration:new -- <name>`.')
  process.exitCode = 1
}

main().catch((error: unknown) => {
  console.error(`Checking the migrations failed: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
})
