// The servers of the several-instance topology, each a real process on
// 127.0.0.1 in a scratch folder: PostgreSQL (embedded), Debian's PgBouncer in
// transaction mode in front of it, redis-server, two instances of the
// service, and Debian's nginx balancing them round robin.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { chmodSync, mkdirSync, openSync, writeFileSync } from 'node:fs'
import path from 'node:path'

export const root = path.resolve(import.meta.dirname, '..', '..')

/** The path of a program, or undefined when it is not installed. */
export function which(program: string): string | undefined {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin']) {
    const found = spawnSync('test', ['-x', path.join(dir, program)])
    if (found.status === 0) return path.join(dir, program)
  }
  return undefined
}


const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits until `check` holds, or throws after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await sleep(100)
  }
  throw new Error(`${what}: not within ${timeoutMs / 1000} s`)
}

/** A process of the topology, its output kept in a file of the scratch folder. */
export interface Running {
  name: string
  child: ChildProcess
  log: string
  exited: Promise<number | string>
}

export function run(dir: string, name: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Running {
  const log = path.join(dir, `${name}.log`)
  const out = openSync(log, 'a')
  const child = spawn(command, args, { cwd: root, env, stdio: ['ignore', out, out] })
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')))
  return { name, child, log, exited }
}

/** Stops a process: SIGTERM, then SIGKILL after `graceMs`. */
export async function stop(running: Running | undefined, graceMs = 15_000): Promise<void> {
  if (!running || running.child.exitCode !== null || running.child.signalCode !== null) return
  const timer = setTimeout(() => running.child.kill('SIGKILL'), graceMs)
  running.child.kill('SIGTERM')
  await running.exited
  clearTimeout(timer)
}

/**
 * PgBouncer in transaction mode: each transaction (or statement outside one)
 * gets whichever server connection is free, so nothing that needs a session
 * of its own (LISTEN, session advisory locks, named prepared statements)
 * works through it. It refuses to run as root; it runs as `user`.
 */
export function startPgBouncer(dir: string, port: number, database: URL, user: string): Running {
  const password = decodeURIComponent(database.password)
  const username = decodeURIComponent(database.username)
  writeFileSync(path.join(dir, 'userlist.txt'), `"${username}" "${password}"\n`, { mode: 0o644 })
  writeFileSync(
    path.join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `app = host=${database.hostname} port=${database.port} dbname=${database.pathname.slice(1)}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${path.join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      // Fewer server connections than the two instances' pools hold: the
      // instances share them, transaction by transaction.
      'default_pool_size = 12',
      'max_client_conn = 200',
      'ignore_startup_parameters = extra_float_digits,options',
      'log_connections = 0',
      'log_disconnections = 0',
      ''
    ].join('\n'),
    { mode: 0o644 }
  )
  const binary = which('pgbouncer') ?? 'pgbouncer'
  return run(dir, 'pgbouncer', binary, ['-u', user, path.join(dir, 'pgbouncer.ini')])
}

export function startRedis(dir: string, port: number): Running {
  const binary = which('redis-server') ?? 'redis-server'
  return run(dir, 'redis', binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'])
}

/**
 * nginx balancing the instances round robin, as an edge proxy would: it
 * passes the client's address in X-Forwarded-For and says which instance
 * answered (X-Upstream), and logs each request with when it ended, how long
 * it took and where it went, for the harness to account for every 5xx. A
 * request whose instance is gone is sent to the other, unless it was
 * already sent (a POST may have been acted on). No connections are kept to
 * the instances, so none is found dead after a kill.
 */
export function startNginx(dir: string, port: number, instances: number[]): Running {
  for (const temp of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(dir, 'nginx', temp), { recursive: true })
  chmodSync(dir, 0o755)
  writeFileSync(
    path.join(dir, 'nginx.conf'),
    `
user root root;
worker_processes 1;
daemon off;
pid ${path.join(dir, 'nginx.pid')};
error_log ${path.join(dir, 'nginx-error.log')} warn;
events { worker_connections 1024; }
http {
  log_format topology '$msec|$request_time|$status|$upstream_addr|$upstream_status|$request';
  access_log ${path.join(dir, 'nginx-access.log')} topology;
  client_body_temp_path ${path.join(dir, 'nginx', 'body')};
  proxy_temp_path ${path.join(dir, 'nginx', 'proxy')};
  fastcgi_temp_path ${path.join(dir, 'nginx', 'fastcgi')};
  uwsgi_temp_path ${path.join(dir, 'nginx', 'uwsgi')};
  scgi_temp_path ${path.join(dir, 'nginx', 'scgi')};
  upstream api {
${instances.map((instance) => `    server 127.0.0.1:${instance} max_fails=1 fail_timeout=2s;`).join('\n')}
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://api;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_next_upstream error timeout;
      proxy_read_timeout 60s;
      add_header X-Upstream $upstream_addr always;
    }
  }
}
`
  )
  const binary = which('nginx') ?? 'nginx'
  return run(dir, 'nginx', binary, ['-p', dir, '-c', path.join(dir, 'nginx.conf')])
}

/** An Ed25519 signing key in a file both instances read. */
export function signingKeyFile(dir: string): string {
  const file = path.join(dir, 'signing-key.pem')
  writeFileSync(file, generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), { mode: 0o600 })
  return file
}

/** An instance of the service, as `node --import tsx src/server.ts` runs it. */
export function startInstance(dir: string, name: string, env: Record<string, string>): Running {
  const inherited = { ...process.env }
  for (const key of Object.keys(inherited)) if (key.startsWith('DATABASE_') || key === 'REDIS_URL') delete inherited[key]
  return run(dir, name, process.execPath, ['--import', 'tsx', 'src/server.ts'], { ...inherited, ...env })
}

/** Whether an instance answers /ready. */
export async function ready(port: number): Promise<boolean> {
  const response = await fetch(`http://127.0.0.1:${port}/ready`, { signal: AbortSignal.timeout(3000) })
  await response.arrayBuffer()
  return response.status === 200
}
