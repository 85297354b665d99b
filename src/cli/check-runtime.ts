// `node dist/cli/check-runtime.js`: proves an install can run the service,
// without a database or network. The image build runs it (Dockerfile), as
// does test/production.test.ts on a production install:
// - argon2's prebuilt binary loads on this Node and platform, and hashes and
//   verifies (an install that skips install scripts has no other chance to
//   find out: on Node 20 that binary crashed the process when loaded);
// - every module the service loads, at start or later (tracing's, when the
//   OTEL_* variables ask for it), is installed: a runtime dependency left
//   among the development ones fails here, not in production.
import argon2 from 'argon2'

async function main(): Promise<void> {
  const hash = await argon2.hash('check-runtime', { type: argon2.argon2id })
  if (!(await argon2.verify(hash, 'check-runtime')) || (await argon2.verify(hash, 'something else'))) {
    throw new Error('argon2 hashed, but does not verify as it should')
  }
  await import('../app.js')
  await import('../db/migrations.js')
  await import('@prisma/schema-engine-wasm/schema_engine_bg')
  await Promise.all([import('@opentelemetry/sdk-node'), import('@fastify/otel'), import('@prisma/instrumentation')])
  console.log(`Runtime check passed: Node.js ${process.versions.node}, argon2id hashes and verifies, every module loads.`)
}

main().catch((error: unknown) => {
  console.error(`Runtime check failed: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
})
