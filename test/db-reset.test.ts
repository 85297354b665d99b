// `npm run db:reset`: the development database back to empty with every
// migration applied; against DATABASE_URL only when asked explicitly.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { resetDatabase } from '../src/db/reset.js'
import { createTestDatabase } from './database.js'

/** Runs one statement; answers its `n`, if it has one. */
async function count(url: string, sql: string): Promise<number> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return Number((await client.query<{ n: string }>(sql)).rows[0]?.n ?? 0)
  } finally {
    await client.end()
  }
}

describe('npm run db:reset', () => {
  it('empties the database, experiments included, and applies the migrations again', async () => {
    const database = await createTestDatabase()
    try {
      await count(database.url, "INSERT INTO users (id, email, full_name, password_hash, updated_at) VALUES (gen_random_uuid(), 'x@example.com', 'X', 'h', now()) RETURNING 1 AS n")
      await count(database.url, 'CREATE TABLE experiment (id int)')
      const applied = await resetDatabase(database.url)
      expect(applied.length).toBeGreaterThanOrEqual(2)
      expect(await count(database.url, 'SELECT count(*) AS n FROM users')).toBe(0)
      expect(await count(database.url, "SELECT count(*) AS n FROM pg_tables WHERE tablename = 'experiment'")).toBe(0)
      expect(await count(database.url, 'SELECT count(*) AS n FROM _prisma_migrations WHERE finished_at IS NOT NULL')).toBe(applied.length)
    } finally {
      await database.drop()
    }
  })

  it('refuses DATABASE_URL without --database-url, and leaves it alone', async () => {
    const database = await createTestDatabase()
    try {
      const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/db-reset.ts'], {
          cwd: join(import.meta.dirname, '..'),
          env: { ...process.env, DATABASE_URL: database.url, MAIL_DISABLED: 'true' },
          stdio: ['ignore', 'pipe', 'pipe']
        })
        let output = ''
        child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
        child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
        child.once('exit', (code) => resolve({ code, output }))
      })
      expect(result.code).toBe(1)
      expect(result.output).toMatch(/DATABASE_URL is set: this would delete every table and row of database "test_\w+" at 127\.0\.0\.1:\d+\. If that is what you mean, run `npm run db:reset -- --database-url`\./)
      expect(await count(database.url, 'SELECT count(*) AS n FROM _prisma_migrations')).toBeGreaterThanOrEqual(2)
    } finally {
      await database.drop()
    }
  })
})
