// A real redis-server for tests of the shared (several-instance) stores, on a
// free loopback port, stopped after the file. Without the binary the Redis
// tests are skipped with a message, except in CI (CI=true), where .ci/run
// installs it and its absence is a failure.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { Redis } from 'ioredis'
import { afterAll, beforeAll } from 'vitest'
import { freePort } from './ports.js'

function findRedisServer(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' })
  const path = found.stdout.trim()
  return found.status === 0 && path ? path : undefined
}

export const REDIS_SERVER = findRedisServer()

if (!REDIS_SERVER) {
  if (process.env.CI) throw new Error('redis-server is not installed; .ci/run installs it (apt-get install -y redis-server)')
  console.warn('\n  SKIPPED: the Redis store tests need redis-server (apt-get install -y redis-server)\n')
}

export interface TestRedis {
  url: string
  /** Empties every key, so a test starts with no counts. */
  flush(): Promise<void>
  /** Stops the server now (an outage). */
  stop(): Promise<void>
}

/**
 * A redis-server (no persistence) for the enclosing file or `describe`,
 * started before its tests and stopped after them.
 */
export function useRedis(): TestRedis {
  const context: TestRedis = { url: '', flush: async () => {}, stop: async () => {} }
  let child: ChildProcess | undefined
  let client: Redis | undefined
  beforeAll(async () => {
    if (!REDIS_SERVER) throw new Error('redis-server is not installed')
    const port = await freePort()
    child = spawn(
      REDIS_SERVER,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
      { stdio: 'ignore' }
    )
    context.url = `redis://127.0.0.1:${port}`
    client = await connectWhenUp(context.url)
    const connected = client
    context.flush = async () => void (await connected.flushall())
    context.stop = async () => {
      connected.disconnect()
      const exited = new Promise((resolve) => child?.once('exit', resolve))
      child?.kill('SIGKILL')
      await exited
    }
  })
  afterAll(async () => {
    // Already stopped by a test of an outage: nothing to quit.
    if (client?.status === 'ready') await client.quit()
    child?.kill('SIGTERM')
  })
  return context
}

async function connectWhenUp(url: string): Promise<Redis> {
  for (let attempt = 0; ; attempt++) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    client.on('error', () => undefined)
    try {
      await client.connect()
      return client
    } catch (error) {
      client.disconnect()
      if (attempt > 100) throw error
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
}
