// Prisma CLI configuration: schema, migrations and seed. The datasource URL is
// read from the environment only when a command needs a database.
import 'dotenv/config'
import { defineConfig } from 'prisma/config'

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: {
    path: 'prisma/migrations',
    seed: 'tsx src/cli/seed.ts'
  },
  datasource: {
    url: process.env.DATABASE_URL ?? ''
  }
})
