// Prometheus metrics (prom-client): one registry per app, on which every
// plugin registers the metrics of what it owns through `fastify.metrics`:
//
//   const sent = fastify.metrics.counter({ name: 'blog_api_emails_sent_total', help: '…', labelNames: ['kind'] })
//
// Names start with `blog_api_`, counters end in `_total` and durations in
// `_seconds` (test/metrics.test.ts runs `promtool check metrics` on a scrape).
// This plugin itself counts requests by route pattern (never the raw URL, so
// ids do not make new series) and status, with latency histograms, and adds
// the process and event-loop metrics.
//
// Served as GET /metrics on METRICS_PORT (a port of its own, for a scraper
// on a private network), or on the main port behind METRICS_TOKEN, or both
// (the port then asks for the token too); with neither it is off. Off, the
// per-request hook and the process metrics are not installed; the event
// counters of other plugins still count (an increment costs nanoseconds), so
// no plugin needs to ask whether metrics are on.
import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import {
  collectDefaultMetrics,
  Counter,
  type CounterConfiguration,
  Gauge,
  type GaugeConfiguration,
  Histogram,
  type HistogramConfiguration,
  Registry
} from 'prom-client'
import { BearerError } from '../../lib/errors.js'

type Config<T> = Omit<T, 'registers'>

export interface Metrics {
  /** Every metric of this app. */
  readonly registry: Registry
  /** Whether anything serves the metrics (METRICS_PORT or METRICS_TOKEN is set). */
  readonly served: boolean
  counter<L extends string = string>(config: Config<CounterConfiguration<L>>): Counter<L>
  gauge<L extends string = string>(config: Config<GaugeConfiguration<L>>): Gauge<L>
  histogram<L extends string = string>(config: Config<HistogramConfiguration<L>>): Histogram<L>
  /** Starts serving on METRICS_PORT, when set (call after the app listens); answers the port. */
  listen(): Promise<number | undefined>
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

/** Request latencies, in seconds: from a post served from memory to a slow login. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
/** The route label of requests that matched no route (404s): one series, whatever the URL. */
const UNMATCHED = 'unmatched'
const REALM = 'metrics'

/** Compares a presented bearer token with the configured one in constant time. */
function tokenMatcher(token: string): (header: string | undefined) => boolean {
  const expected = createHash('sha256').update(token).digest()
  return (header) => {
    const presented = /^Bearer +(\S+)$/i.exec(header ?? '')?.[1]
    if (presented === undefined) return false
    return timingSafeEqual(createHash('sha256').update(presented).digest(), expected)
  }
}

export default fp(
  async function metricsPlugin(fastify) {
    const { METRICS_PORT, METRICS_TOKEN, HOST } = fastify.config
    const registry = new Registry()
    const served = METRICS_PORT !== undefined || METRICS_TOKEN !== undefined
    const authorized = METRICS_TOKEN === undefined ? () => true : tokenMatcher(METRICS_TOKEN)
    let server: Server | undefined

    const metrics: Metrics = {
      registry,
      served,
      counter: (config) => new Counter({ ...config, registers: [registry] }),
      gauge: (config) => new Gauge({ ...config, registers: [registry] }),
      histogram: (config) => new Histogram({ ...config, registers: [registry] }),
      async listen() {
        if (METRICS_PORT === undefined || server) return undefined
        const listening = createServer((request, response) => void serveOwnPort(request, response))
        await new Promise<void>((resolve, reject) => {
          listening.once('error', reject)
          listening.listen(METRICS_PORT, HOST, () => {
            listening.off('error', reject)
            resolve()
          })
        })
        server = listening
        return (listening.address() as AddressInfo).port
      }
    }
    fastify.decorate('metrics', metrics)
    fastify.addHook('onClose', async () => {
      const closing = server
      server = undefined
      if (!closing) return
      const closed = new Promise((resolve) => closing.close(resolve))
      // A scraper's keep-alive connection would otherwise hold the close open.
      closing.closeAllConnections()
      await closed
    })
    if (!served) return

    collectDefaultMetrics({ register: registry })
    // Gauges named like counters, which `promtool check metrics` flags; the
    // same counts remain, by type, in nodejs_active_handles and its siblings.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      registry.removeSingleMetric(name)
    }
    const labelNames = ['method', 'route', 'status_code'] as const
    const requests = metrics.counter({ name: 'http_requests_total', help: 'HTTP requests answered, by route pattern and status.', labelNames })
    const latency = metrics.histogram({
      name: 'http_request_duration_seconds',
      help: 'Time from receiving a request to finishing its answer, by route pattern and status.',
      labelNames,
      buckets: LATENCY_BUCKETS
    })
    fastify.addHook('onResponse', (request, reply, done) => {
      const labels = { method: request.method, route: request.routeOptions.url ?? UNMATCHED, status_code: reply.statusCode }
      requests.inc(labels)
      latency.observe(labels, reply.elapsedTime / 1000)
      done()
    })

    async function serveOwnPort(request: IncomingMessage, response: ServerResponse): Promise<void> {
      const path = (request.url ?? '').split('?')[0]
      let status = 200
      let body: string
      if (path !== '/metrics' || (request.method !== 'GET' && request.method !== 'HEAD')) {
        status = 404
        body = JSON.stringify({ type: 'about:blank', title: 'Not Found', status, detail: 'Metrics are at GET /metrics.' })
      } else if (!authorized(request.headers.authorization)) {
        status = 401
        response.setHeader('www-authenticate', `Bearer realm="${REALM}"`)
        body = JSON.stringify({ type: 'about:blank', title: 'Unauthorized', status, detail: 'The metrics need the bearer token of METRICS_TOKEN.' })
      } else {
        body = await registry.metrics()
      }
      response.statusCode = status
      response.setHeader('content-type', status === 200 ? registry.contentType : 'application/problem+json')
      response.setHeader('cache-control', 'no-store')
      response.end(request.method === 'HEAD' ? undefined : body)
    }

    if (METRICS_PORT !== undefined || METRICS_TOKEN === undefined) return
    fastify.get(
      '/metrics',
      {
        config: { pressureExempt: true },
        // For operators, not API clients: left out of the OpenAPI document.
        schema: { hide: true },
        onRequest: async (request: FastifyRequest) => {
          if (!authorized(request.headers.authorization)) {
            throw new BearerError('missing', 'The metrics need the bearer token of METRICS_TOKEN.', { realm: REALM })
          }
        }
      },
      async (_request, reply) => {
        reply.header('content-type', registry.contentType).header('cache-control', 'no-store')
        return await registry.metrics()
      }
    )
  },
  { name: 'metrics', dependencies: ['config', 'errors'] }
)
