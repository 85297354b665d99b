// A database of its own for a test file: a copy of the migrated template made
// by the global setup (or an empty one), dropped when the file is done.
import { randomBytes } from 'node:crypto'
import { inject } from 'vitest'
import { databaseUrlFor } from '../src/db/migrations.js'
import { adminQuery } from './admin-sql.js'

export interface TestDatabase {
  url: string
  /** Drops the database, ending any connection still open to it. */
  drop(): Promise<void>
}

/** `migrated: false` gives an empty database, for tests of the migrations themselves. */
export async function createTestDatabase({ migrated = true }: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const adminUrl = inject('databaseAdminUrl')
  // template0 is PostgreSQL's pristine empty database.
  const template = migrated ? inject('databaseTemplate') : 'template0'
  // The pid keeps names apart between the parallel test processes.
  const name = `test_${process.pid}_${randomBytes(6).toString('hex')}`
  await adminQuery(adminUrl, `CREATE DATABASE "${name}" TEMPLATE "${template}"`)
  return {
    url: databaseUrlFor(adminUrl, name),
    drop: async () => { await adminQuery(adminUrl, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) }
  }
}
