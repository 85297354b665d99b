// Writes the OpenAPI document of the service to a file (default openapi.json):
//   npm run openapi [-- --out path]
// The app is built exactly as the server builds it, so the document cannot
// drift from the routes, but on a database address that is never reached: the
// Prisma client connects on its first query only, and the revocation listener
// (the one thing that connects at start) keeps retrying in the background
// instead of failing. No database is needed; test/openapi.test.ts holds it so.
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import Fastify from 'fastify'
import app, { serverOptions } from '../app.js'
import { loadConfig } from '../config.js'

/** The OpenAPI document, built without a database. */
export async function buildOpenApiDocument(): Promise<Record<string, unknown>> {
  const config = loadConfig({
    LOG_LEVEL: 'silent',
    DATABASE_URL: 'postgresql://openapi@127.0.0.1:1/unused',
    MIGRATE_ON_START: 'false',
    // Throwaway keys: the document does not depend on them, but the app needs them to load.
    JWT_PRIVATE_KEY: generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    APP_SECRET: randomBytes(48).toString('base64url'),
    MFA_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    // Never reached either: with email on, the document has the email routes.
    MAIL_URL: 'smtp://127.0.0.1:1',
    MAIL_FROM: 'openapi@localhost'
  })
  const fastify = Fastify(serverOptions(config))
  try {
    await fastify.register(app, { config })
    await fastify.ready()
    return fastify.swagger() as unknown as Record<string, unknown>
  } finally {
    await fastify.close()
  }
}

async function main() {
  const { values } = parseArgs({ options: { out: { type: 'string', default: 'openapi.json' } } })
  const out = path.resolve(values.out)
  await writeFile(out, JSON.stringify(await buildOpenApiDocument(), null, 2) + '\n')
  process.stdout.write(`Wrote ${path.relative(process.cwd(), out)}\n`)
}

// Run as a script (not when a test imports the builder).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`openapi: ${(error as Error).message}\n`)
    process.exit(1)
  })
}
