// Tracing by the standard OTEL_* variables: the real server process sends
// its spans over OTLP to a receiver on 127.0.0.1; a login continues the
// caller's trace (traceparent), with spans for the request, the database
// queries and the password verification, and its log lines carry the trace
// id. Without the variables, tracing is off and costs nothing.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loggerOptions } from '../src/app.js'
import { tracingEnabled } from '../src/plugins/infra/tracing.js'
import { buildApp, fileDatabase, PASSWORD, TEST_APP_SECRET, TEST_MFA_KEY, TEST_PRIVATE_KEY, testConfig, uniqueEmail } from './helper.js'

interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
}

/** An OTLP/HTTP receiver (JSON encoding) that keeps every span it is sent. */
async function otlpReceiver(): Promise<{ url: string; spans: OtlpSpan[]; server: Server }> {
  const spans: OtlpSpan[] = []
  const server = createServer((request, response) => {
    let body = ''
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')))
    request.on('end', () => {
      if (request.url === '/v1/traces') {
        const parsed = JSON.parse(body) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }> }
        for (const resource of parsed.resourceSpans) for (const scope of resource.scopeSpans) spans.push(...scope.spans)
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, server }
}

describe('with OTEL_EXPORTER_OTLP_ENDPOINT', () => {
  let receiver: Awaited<ReturnType<typeof otlpReceiver>> | undefined
  afterAll(async () => {
    await new Promise((resolve) => receiver?.server.close(resolve))
  })

  it("exports a login's spans, continuing the caller's trace, and logs its trace id", async () => {
    receiver = await otlpReceiver()
    const { url } = await fileDatabase()
    const inherited = { ...process.env }
    delete inherited.DATABASE_URL
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: join(import.meta.dirname, '..'),
      env: {
        ...inherited,
        HOST: '127.0.0.1',
        PORT: '0',
        LOG_LEVEL: 'info',
        DATABASE_URL: url,
        JWT_PRIVATE_KEY: TEST_PRIVATE_KEY,
        APP_SECRET: TEST_APP_SECRET,
        MFA_ENCRYPTION_KEY: TEST_MFA_KEY,
        MAIL_DISABLED: 'true',
        ARGON2_MEMORY_KIB: '4096',
        ARGON2_TIME_COST: '2',
        ARGON2_PARALLELISM: '1',
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_SERVICE_NAME: 'blog-api-test',
        // A loaded test machine must not shed these requests (see helper.ts).
        PRESSURE_MAX_EVENT_LOOP_DELAY: '0'
      },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
    try {
      await expect.poll(() => /listening on http|Cannot start/.test(output), { timeout: 60_000, interval: 100 }).toBe(true)
      expect(output).toContain('listening on http')
      const base = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1] ?? ''

      const email = uniqueEmail('traced')
      const signup = await fetch(`${base}/auth/signup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, full_name: 'Traced', password: PASSWORD })
      })
      expect(signup.status).toBe(201)
      const traceId = randomBytes(16).toString('hex')
      const login = await fetch(`${base}/auth/token`, {
        method: 'POST',
        headers: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
        body: new URLSearchParams({ grant_type: 'password', username: email, password: PASSWORD })
      })
      expect(login.status).toBe(200)

      // Shutting down sends what is still buffered.
      child.kill('SIGTERM')
      expect(await exited, output).toBe(0)

      const trace = receiver.spans.filter((span) => span.traceId === traceId)
      const names = trace.map((span) => span.name)
      expect(names).toContain('POST /auth/token')
      expect(names).toContain('argon2 verify')
      expect(names.some((name) => name.startsWith('prisma:')), names.join(', ')).toBe(true)
      const request = trace.find((span) => span.name === 'POST /auth/token')
      // SPAN_KIND_SERVER; its parent is the caller's span.
      expect(request?.kind).toBe(2)
      expect(request?.parentSpanId).toMatch(/^[0-9a-f]{16}$/)

      const tracedLines = output.split('\n').filter((line) => line.includes(`"trace_id":"${traceId}"`))
      expect(tracedLines.length, output).toBeGreaterThan(0)
    } finally {
      child.kill('SIGKILL')
    }
  }, 120_000)
})

describe('without OTEL_* variables', () => {
  it('is off: no SDK, no trace ids in log lines, hashing runs untraced', async () => {
    expect(tracingEnabled({})).toBe(false)
    expect(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: '' })).toBe(false)
    expect(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SDK_DISABLED: 'true' })).toBe(false)
    expect(tracingEnabled({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' })).toBe(false)
    expect(tracingEnabled({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' })).toBe(true)
    expect(loggerOptions(await testConfig())).not.toHaveProperty('mixin')
    const app = await buildApp()
    try {
      expect(app.tracing.enabled).toBe(false)
      expect(await app.tracing.span('anything', async () => 42)).toBe(42)
    } finally {
      await app.close()
    }
  })
})
