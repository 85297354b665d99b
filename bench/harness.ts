// What the benchmark's phases share: starting servers as processes of their
// own on 127.0.0.1, waiting for them, loading them with autocannon (in a
// process of its own too), reading their memory from /proc, and the small
// statistics the report needs.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { LoadResult, LoadSpec } from './load.js'

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
export const log = (line: string) => process.stderr.write(`[bench] ${line}\n`)

// ---------------------------------------------------------------- processes

const children = new Set<ChildProcess>()
let stopping = false

export interface Server {
  name: string
  child: ChildProcess
  /** performance.now() when it was started: profiles count from about then. */
  startedAt: number
  /** Where its CPU profile goes, when profiled. */
  profileDir?: string
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

export interface StartOptions {
  /** Writes a CPU profile (node --cpu-prof) into this folder when the process exits. */
  profileDir?: string
  /** Appends the process's standard output to this file (else it is dropped). */
  stdoutFile?: string
}

/** Starts a TypeScript entry point with tsx, as its own process. */
export function startServer(name: string, file: string, env: Record<string, string>, options: StartOptions = {}): Server {
  const nodeArgs = options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`] : []
  if (options.profileDir) mkdirSync(options.profileDir, { recursive: true })
  const stdout = options.stdoutFile ? openSync(options.stdoutFile, 'a') : 'ignore'
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', file], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', stdout, 'pipe']
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000)
  })
  child.once('exit', (code, signal) => {
    children.delete(child)
    if (!stopping) log(`${name} exited early (code ${code}, signal ${signal}):\n${stderr}`)
  })
  children.add(child)
  return { name, child, startedAt: performance.now(), profileDir: options.profileDir }
}

export async function waitForHttp(url: string, init: RequestInit = {}, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, init)
      await response.arrayBuffer()
      if (response.status < 500) return
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  throw new Error(`${url} did not answer within ${timeoutMs / 1000} s`)
}

export function runNode(file: string, argv: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, file), ...argv], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    children.add(child)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.once('exit', (code) => {
      children.delete(child)
      if (code === 0) resolve(stdout.trim())
      else reject(new Error(`${file} failed (${code}): ${stderr}`))
    })
  })
}

/** Runs one autocannon load in a process of its own; resolves with its result. */
export async function load(spec: LoadSpec): Promise<LoadResult> {
  // In a file: a large body would not fit in an argument (E2BIG).
  const specFile = path.join(os.tmpdir(), `bench-load-${process.pid}-${randomBytes(6).toString('hex')}.json`)
  writeFileSync(specFile, JSON.stringify(spec))
  let output: string
  try {
    output = await runNode('bench/load.ts', [specFile])
  } finally {
    rmSync(specFile, { force: true })
  }
  const line = output.split('\n').pop()
  if (!line) throw new Error('load run printed no result')
  return JSON.parse(line) as LoadResult
}

/** Stops a server the way an orchestrator does (SIGTERM, SIGKILL after 10 s). */
export function stopServer(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

export async function stopAll() {
  stopping = true
  await Promise.all([...children].map(stopServer))
}

/** Resident set size of a process, in MiB, from /proc (Linux). */
export function rssMiB(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1]
    return kb ? Number(kb) / 1024 : undefined
  } catch {
    return undefined
  }
}

/** CPU time (user + system) a process has used, in milliseconds, from /proc (Linux). */
export function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // utime and stime are fields 14 and 15, in clock ticks (100 a second on Linux).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return undefined
  }
}

/** The processes a process started (its children), from /proc (Linux). */
export function childrenOf(pid: number): number[] {
  const found: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      // "pid (comm) state ppid ...": comm may hold spaces, so read after its ")".
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) found.push(Number(entry))
    } catch {
      // exited meanwhile
    }
  }
  return found
}

// ---------------------------------------------------------------- numbers

export const median = (values: number[]) => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  if (sorted.length === 0) return NaN
  return sorted.length % 2 ? (sorted[middle] ?? NaN) : ((sorted[middle - 1] ?? NaN) + (sorted[middle] ?? NaN)) / 2
}
export const fixed = (value: number, digits = 0) => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a')
/** Requests per second: whole numbers, but a decimal for slow cases such as logins. */
export const rate = (value: number) => fixed(value, value < 100 ? 1 : 0)
export const percent = (value: number) => `${fixed(value * 100)} %`
export const loadavg = () => os.loadavg().map((value) => value.toFixed(2)).join(' / ')
export const met = (ok: boolean) => (ok ? 'met' : '**not met**')

export async function json<T>(response: Promise<Response>): Promise<T> {
  const answer = await response
  const body = (await answer.json()) as T
  if (!answer.ok) throw new Error(`${answer.url}: ${answer.status} ${JSON.stringify(body)}`)
  return body
}

export interface MemorySample {
  /** Seconds since sampling started. */
  at: number
  /** The process's RSS, MiB. */
  rss: number
  /** The RSS of its child processes, MiB. */
  children: number
}

/** Samples a process's RSS (and its children's) every `everyMs` until stopped. */
export function sampleMemory(pid: number, everyMs = 1000): { samples: MemorySample[]; stop(): void } {
  const samples: MemorySample[] = []
  const start = performance.now()
  const timer = setInterval(() => {
    const rss = rssMiB(pid)
    const kids = childrenOf(pid).reduce((sum, child) => sum + (rssMiB(child) ?? 0), 0)
    if (rss !== undefined) samples.push({ at: (performance.now() - start) / 1000, rss, children: kids })
  }, everyMs)
  return { samples, stop: () => clearInterval(timer) }
}

/** Least-squares slope of a value over time, per minute. */
export function slopePerMinute(samples: MemorySample[], value: (sample: MemorySample) => number): number {
  const n = samples.length
  if (n < 2) return NaN
  const meanT = samples.reduce((sum, s) => sum + s.at, 0) / n
  const meanV = samples.reduce((sum, s) => sum + value(s), 0) / n
  let num = 0
  let den = 0
  for (const sample of samples) {
    num += (sample.at - meanT) * (value(sample) - meanV)
    den += (sample.at - meanT) ** 2
  }
  return (num / den) * 60
}

/** After a warm-up (the first quarter): the means of the first and last tenth of the samples, and the trend. */
export function memoryGrowth(samples: MemorySample[], value: (sample: MemorySample) => number) {
  const span = samples.at(-1)?.at ?? 0
  const warm = samples.filter((sample) => sample.at >= span * 0.25)
  const window = Math.max(3, Math.round(warm.length / 10))
  const mean = (list: MemorySample[]) => list.reduce((sum, s) => sum + value(s), 0) / Math.max(list.length, 1)
  const first = mean(warm.slice(0, window))
  const last = mean(warm.slice(-window))
  return { first, last, growth: last - first, share: (last - first) / first, trend: slopePerMinute(warm, value), window, peak: Math.max(...samples.map(value)) }
}
