// `npm run dev`: the server, restarted on every change under src/, with
// readable logs (LOG_PRETTY). A restart took 7 to 11 seconds; most of it went
// to work that a restart need not repeat, now done once here, in a process
// that outlives the restarts:
// - the embedded PostgreSQL starts here and stays up; each new server process
//   finds it running and attaches to it (src/db/embedded.ts), instead of the
//   old process stopping it and the new one starting it again;
// - TypeScript is compiled here, file by file, by esbuild's watch mode into
//   .dev/ (beside dist/, so paths relative to the code hold), and the server
//   runs that JavaScript under `node --watch`: loading every module through
//   a TypeScript loader in each new process cost about half a second.
// (Checking that the database's migrations are current without loading the
// schema engine is in src/db/migrations.ts, and helps every start.)
// Type errors are not reported here; `npm run typecheck` does that.
import { spawn } from 'node:child_process'
import { rm } from 'node:fs/promises'
import path from 'node:path'
import * as esbuild from 'esbuild'
import { isEmbedded, loadConfig } from '../config.js'
import { startEmbeddedPostgres } from '../db/embedded.js'

const OUT_DIR = '.dev'

async function main(): Promise<void> {
  const config = loadConfig()
  const embedded = isEmbedded(config)
    ? await startEmbeddedPostgres({ dataDir: path.resolve(config.EMBEDDED_PG_DIR), persistent: true, port: config.EMBEDDED_PG_PORT })
    : undefined

  await rm(OUT_DIR, { recursive: true, force: true })
  const compiler = await esbuild.context({
    // Files added later need a restart of `npm run dev` to be picked up.
    entryPoints: ['src/**/*.ts', 'src/**/*.json'],
    outdir: OUT_DIR,
    outbase: 'src',
    loader: { '.json': 'copy' },
    format: 'esm',
    platform: 'node',
    target: 'node22',
    sourcemap: 'linked',
    logLevel: 'warning'
  })
  await compiler.rebuild()
  await compiler.watch()

  const server = spawn(process.execPath, ['--watch', '--watch-preserve-output', '--enable-source-maps', path.join(OUT_DIR, 'server.js')], {
    stdio: 'inherit',
    env: { ...process.env, LOG_PRETTY: process.env.LOG_PRETTY ?? 'true' }
  })
  // Ctrl-C reaches the whole process group; a signal sent to this process alone is passed on.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => server.kill(signal))
  const code = await new Promise<number>((resolve) => server.once('exit', (exitCode) => resolve(exitCode ?? 0)))
  await compiler.dispose()
  await embedded?.stop()
  process.exitCode = code
}

main().catch((error: unknown) => {
  console.error(`npm run dev: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
})
