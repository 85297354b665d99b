// Prisma Migrate through the WebAssembly schema engine, against real
// databases: applying, concurrent starts, refusing a broken history, and
// diffing the migrations against schema.prisma.
import { appendFile, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, afterEach, describe, expect, inject, test } from 'vitest'
import {
  applyMigrations,
  createMigration,
  defaultMigrationsDir,
  defaultSchemaPath,
  schemaDrift
} from '../src/db/migrations.js'
import { createTestDatabase, type TestDatabase } from './database.js'

const databases: TestDatabase[] = []
const folders: string[] = []

async function emptyDatabase(): Promise<string> {
  const database = await createTestDatabase({ migrated: false })
  databases.push(database)
  return database.url
}

/** A copy of the committed migrations that a test may change. */
async function migrationsCopy(): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), 'migrations-test-'))
  folders.push(folder)
  const migrationsDir = join(folder, 'migrations')
  await cp(defaultMigrationsDir, migrationsDir, { recursive: true })
  return migrationsDir
}

async function committedMigrations(): Promise<string[]> {
  const entries = await readdir(defaultMigrationsDir, { withFileTypes: true })
  return entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort()
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query<T>(sql)).rows
  } finally {
    await client.end()
  }
}

async function recordedMigrations(url: string): Promise<string[]> {
  const rows = await query<{ migration_name: string }>(url, 'SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL ORDER BY migration_name')
  return rows.map((row) => row.migration_name)
}

afterEach(async () => {
  await Promise.all(folders.splice(0).map(async (folder) => { await rm(folder, { recursive: true, force: true }) }))
})

afterAll(async () => {
  await Promise.all(databases.map(async (database) => { await database.drop() }))
})

describe('applying migrations', () => {
  test('an empty database gets every table, and a second run applies nothing', async () => {
    const url = await emptyDatabase()

    const first = await applyMigrations(url)
    expect(first.applied).toEqual(await committedMigrations())
    const tables = await query<{ table_name: string }>(url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
    expect(tables.map((row) => row.table_name)).toEqual(expect.arrayContaining([
      '_prisma_migrations', 'users', 'posts', 'sessions', 'refresh_tokens',
      'clients', 'client_secrets', 'revoked_sessions', 'audit_events'
    ]))

    const second = await applyMigrations(url)
    expect(second.applied).toEqual([])
    expect(await recordedMigrations(url)).toEqual(await committedMigrations())
  })

  test('two processes starting at once on one empty database both succeed and each migration is applied once', async () => {
    const url = await emptyDatabase()

    const results = await Promise.all([applyMigrations(url), applyMigrations(url)])

    const applied = results.flatMap((result) => result.applied).sort()
    expect(applied).toEqual(await committedMigrations())
    expect(await recordedMigrations(url)).toEqual(await committedMigrations())
  })

  test('a migration edited after it was applied is refused', async () => {
    const url = await emptyDatabase()
    const migrationsDir = await migrationsCopy()
    await applyMigrations(url, { migrationsDir })
    const [first] = await committedMigrations()
    await appendFile(join(migrationsDir, String(first), 'migration.sql'), '\n-- an afterthought\n')

    await expect(applyMigrations(url, { migrationsDir })).rejects.toThrow(/was changed after it was applied/)
  })

  test('a failing migration is reported, and later runs refuse to build on it', async () => {
    const url = await emptyDatabase()
    const migrationsDir = await migrationsCopy()
    const broken = join(migrationsDir, '99991231235959_broken')
    await mkdir(broken)
    await writeFile(join(broken, 'migration.sql'), 'ALTER TABLE "no_such_table" ADD COLUMN "x" INTEGER;\n')

    await expect(applyMigrations(url, { migrationsDir })).rejects.toThrow(/99991231235959_broken/)
    await expect(applyMigrations(url, { migrationsDir })).rejects.toThrow(/99991231235959_broken failed earlier/)
  })
})

describe('comparing the migrations with schema.prisma', () => {
  const scratchServerUrl = inject('databaseAdminUrl')

  test('the committed migrations match schema.prisma', async () => {
    expect(await schemaDrift({ scratchServerUrl })).toBe('')
  })

  test('a schema change without a migration shows as drift, and createMigration writes exactly that SQL', async () => {
    const migrationsDir = await migrationsCopy()
    const schemaPath = join(migrationsDir, '..', 'schema.prisma')
    const schema = await readFile(defaultSchemaPath, 'utf8')
    await writeFile(schemaPath, schema.replace(/model Client \{\n/, '$&  note      String?\n'))

    const drift = await schemaDrift({ migrationsDir, schemaPath, scratchServerUrl })
    expect(drift).toContain('ALTER TABLE "clients" ADD COLUMN')

    const created = await createMigration('add_client_note', { migrationsDir, schemaPath, scratchServerUrl })
    expect(created?.name).toMatch(/^\d{14}_add_client_note$/)
    expect(await readFile(String(created?.path), 'utf8')).toBe(drift)
    expect(await schemaDrift({ migrationsDir, schemaPath, scratchServerUrl })).toBe('')
    expect(await createMigration('nothing_changed', { migrationsDir, schemaPath, scratchServerUrl })).toBeUndefined()
  })

  test('a migration name other than lower-case letters, digits and underscores is refused', async () => {
    await expect(createMigration('Add Note', { scratchServerUrl })).rejects.toThrow(/a-z, 0-9 and _/)
  })
})
