// Test runner configuration: one real PostgreSQL for the run (embedded, or
// TEST_DATABASE_URL), one database per test file cloned from a migrated
// template, files in parallel in separate processes.
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
    env: { LOG_LEVEL: 'silent' }
  }
})
