// Vitest global setup: one PostgreSQL server for the whole run and a template
// database with every migration applied. Each test file then copies the
// template (test/database.ts), which takes milliseconds instead of migrating.
//
// TEST_DATABASE_URL set: that server is used (its URL names any database the
// user may connect to, and the user needs CREATEDB). Unset: a throwaway
// embedded PostgreSQL is started and removed afterwards.
import { randomBytes } from 'node:crypto'
import type { TestProject } from 'vitest/node'
import { startEmbeddedPostgres } from '../src/db/embedded.js'
import { applyMigrations, databaseUrlFor } from '../src/db/migrations.js'
import { adminQuery } from './admin-sql.js'

declare module 'vitest' {
  export interface ProvidedContext {
    /** A database on the test server from which test databases are created. */
    databaseAdminUrl: string
    /** The migrated database that test databases are copied from. */
    databaseTemplate: string
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await testServer()
  const teardown = async (): Promise<void> => {
    // A throwaway server goes with everything in it; a shared one keeps its other databases.
    if (server.stop) await server.stop()
    else await adminQuery(server.adminUrl, `DROP DATABASE IF EXISTS "${server.template}" WITH (FORCE)`)
  }
  try {
    await adminQuery(server.adminUrl, `CREATE DATABASE "${server.template}"`)
    await applyMigrations(databaseUrlFor(server.adminUrl, server.template))
  } catch (error) {
    await teardown()
    throw error
  }
  project.provide('databaseAdminUrl', server.adminUrl)
  project.provide('databaseTemplate', server.template)
  return teardown
}

interface TestServer {
  adminUrl: string
  template: string
  /** Present when the server is ours to stop. */
  stop?: () => Promise<void>
}

async function testServer(): Promise<TestServer> {
  const externalUrl = process.env.TEST_DATABASE_URL
  if (externalUrl) {
    // A shared server may host several test runs at once: each gets its own template.
    return { adminUrl: externalUrl, template: `app_template_${process.pid}_${randomBytes(4).toString('hex')}` }
  }
  const embedded = await startEmbeddedPostgres({ dataDir: '', persistent: false })
  return { adminUrl: embedded.adminUrl, template: 'app_template', stop: () => embedded.stop() }
}
