// One load run with autocannon, in a process of its own so the load generator
// never shares an event loop with the harness. Reads a LoadSpec as JSON from
// the file named by argv[2], runs a warm-up whose numbers are thrown away, then the measured
// run, and prints one JSON line (a LoadResult) on stdout.
//
// Refresh tokens rotate through a shared pool: each answer's new refresh
// token goes back in for the next request, and the pool left at the end is
// printed with the result for the next run. (Give the refresh case no
// separate warm-up: the tokens in flight when a run stops are lost.)
import { readFileSync } from 'node:fs'
import autocannon from 'autocannon'

export interface LoadSpec {
  url: string
  method?: 'GET' | 'POST'
  headers?: Record<string, string>
  body?: string
  connections: number
  /** Seconds measured. */
  duration: number
  /** Seconds of warm-up before the measured run. */
  warmup: number
  /** The refresh_token grant: a pool of live refresh tokens, at least one per connection. */
  refreshTokens?: string[]
}

export interface LoadResult {
  /** Mean successful (2xx) requests per second over the measured run. */
  rps: number
  p50: number
  p90: number
  p99: number
  /** Mean latency, ms (autocannon's percentiles are whole milliseconds; this is not). */
  mean: number
  max: number
  requests: number
  /** Requests of the warm-up run (not in the numbers above). */
  warmupRequests: number
  non2xx: number
  errors: number
  timeouts: number
  /** Answers by status code, to tell what the non-2xx were. */
  statuses: Record<string, number>
  /** The refresh_token grant: the live refresh tokens left at the end, for the next run. */
  refreshTokens?: string[]
}

function requestsFor(spec: LoadSpec): autocannon.Request[] | undefined {
  const pool = spec.refreshTokens
  if (pool && pool.length > 0) {
    return [
      {
        setupRequest(request) {
          const body = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: pool.shift() ?? 'exhausted' })
          return { ...request, body: body.toString() }
        },
        onResponse(status, body) {
          if (status !== 200) return
          const answer = JSON.parse(body) as { refresh_token?: string }
          if (answer.refresh_token) pool.push(answer.refresh_token)
        }
      }
    ]
  }
  return undefined
}

async function run(spec: LoadSpec, duration: number): Promise<autocannon.Result> {
  const requests = requestsFor(spec)
  return autocannon({
    url: spec.url,
    method: spec.method ?? 'GET',
    headers: spec.headers ?? {},
    ...(spec.body === undefined ? {} : { body: spec.body }),
    ...(requests ? { requests } : {}),
    connections: spec.connections,
    duration,
    timeout: 30
  })
}

const spec = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as LoadSpec
const warmup = spec.warmup > 0 ? await run(spec, spec.warmup) : undefined
const result = await run(spec, spec.duration)
const ok = result['2xx']
const output: LoadResult = {
  rps: ok / result.duration,
  p50: result.latency.p50,
  p90: result.latency.p90,
  p99: result.latency.p99,
  mean: result.latency.average,
  max: result.latency.max,
  requests: result.requests.total,
  warmupRequests: warmup?.requests.total ?? 0,
  non2xx: result.non2xx,
  errors: result.errors,
  timeouts: result.timeouts,
  statuses: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, stats]) => [code, stats?.count ?? 0])),
  ...(spec.refreshTokens ? { refreshTokens: spec.refreshTokens } : {})
}
process.stdout.write(JSON.stringify(output) + '\n')
