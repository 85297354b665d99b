// `npm run db:reset`: deletes every table and row of the development database
// and applies the migrations again. Against the embedded PostgreSQL only,
// unless `--database-url` says that DATABASE_URL's database is meant:
//   npm run db:reset                      the embedded database (.data/)
//   npm run db:reset -- --database-url    the database of DATABASE_URL
import { parseArgs } from 'node:util'
import { explainConnectionError } from '../db/connection-errors.js'
import { resetDatabase } from '../db/reset.js'
import { withDatabase } from './context.js'

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'database-url': { type: 'boolean', default: false } } })
  await withDatabase(async (config, embedded) => {
    const url = new URL(config.DATABASE_URL)
    const target = embedded ? `the embedded PostgreSQL in ${embedded.dataDir}` : `database "${url.pathname.slice(1)}" at ${url.host}`
    if (!embedded && !values['database-url']) {
      throw new Error(
        `DATABASE_URL is set: this would delete every table and row of ${target}. ` +
          'If that is what you mean, run `npm run db:reset -- --database-url`.'
      )
    }
    let applied: string[]
    try {
      applied = await resetDatabase(config.DATABASE_URL)
    } catch (error) {
      throw new Error(explainConnectionError(error, config.DATABASE_URL) ?? (error as Error).message, { cause: error })
    }
    console.log(`Reset ${target}: empty, with ${applied.length} migration${applied.length === 1 ? '' : 's'} applied.`)
    console.log('`npm run db:seed` adds the demo data again; restart a running server.')
  })
}

main().catch((error: unknown) => {
  console.error(`db:reset: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
})
