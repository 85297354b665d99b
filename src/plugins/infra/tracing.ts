// OpenTelemetry tracing, configured by the standard OTEL_* variables
// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, ...),
// which the OpenTelemetry Node SDK reads itself. A span per request
// (@fastify/otel, named by method and route pattern, continuing a caller's
// `traceparent`), spans for database queries (@prisma/instrumentation) and
// for password hashing (`fastify.tracing.span`), and the trace id in every
// log line written inside a request (see `loggerOptions` in app.ts).
//
// On when an OTLP endpoint or OTEL_TRACES_EXPORTER is set (and
// OTEL_SDK_DISABLED is not true). Off, the SDK is not even loaded and
// `span()` calls its function straight away: tracing costs nothing.
import { context, type Span, SpanStatusCode, trace } from '@opentelemetry/api'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'

export interface Tracing {
  readonly enabled: boolean
  /** Runs `work` inside a child span of the current one (when tracing is on). */
  span<T>(name: string, work: () => Promise<T>): Promise<T>
}

declare module 'fastify' {
  interface FastifyInstance {
    tracing: Tracing
  }
}

/** Whether the OTEL_* variables ask for traces; empty values count as unset. */
export function tracingEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  const set = (name: string) => (env[name] ?? '').trim() !== ''
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return false
  if (set('OTEL_TRACES_EXPORTER')) return env.OTEL_TRACES_EXPORTER?.trim() !== 'none'
  return set('OTEL_EXPORTER_OTLP_ENDPOINT') || set('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')
}

/** The ids of the active span, for log lines; nothing outside a span. */
export function traceIds(): { trace_id?: string; span_id?: string } {
  const span = trace.getSpan(context.active())
  if (!span) return {}
  const { traceId, spanId } = span.spanContext()
  return { trace_id: traceId, span_id: spanId }
}

const TRACER_NAME = 'blog-api'
/** Probes and scrapes would fill traces with nothing of interest. */
const UNTRACED_ROUTES = new Set(['/health', '/metrics'])

const off: Tracing = { enabled: false, span: (_name, work) => work() }

export default fp(
  async function tracingPlugin(fastify) {
    if (!tracingEnabled()) {
      fastify.decorate('tracing', off)
      return
    }
    // Loaded only when on: the SDK and its exporters are a large import.
    const [{ NodeSDK }, { FastifyOtelInstrumentation }, { PrismaInstrumentation }] = await Promise.all([
      import('@opentelemetry/sdk-node'),
      import('@fastify/otel'),
      import('@prisma/instrumentation')
    ])
    const requests = new FastifyOtelInstrumentation({
      // A span for the request and one for its handler; one per hook would be noise.
      instrumentHooks: false,
      ignorePaths: (route: { url: string }) => UNTRACED_ROUTES.has(route.url),
      requestHook: (span: Span, request: FastifyRequest) => {
        span.updateName(`${request.method} ${request.routeOptions.url ?? 'unmatched'}`)
      }
    })
    const sdk = new NodeSDK({
      // OTEL_SERVICE_NAME, when set, names the service instead.
      ...(process.env.OTEL_SERVICE_NAME?.trim() ? {} : { serviceName: 'blog-api' }),
      instrumentations: [requests, new PrismaInstrumentation()]
    })
    sdk.start()
    // Spans still buffered are sent before the process ends.
    fastify.addHook('onClose', async () => {
      await sdk.shutdown().catch((error: unknown) => fastify.log.warn({ err: error }, 'could not send the last traces'))
    })
    await fastify.register(requests.plugin())

    const tracer = trace.getTracer(TRACER_NAME)
    fastify.decorate('tracing', {
      enabled: true,
      span: (name, work) =>
        tracer.startActiveSpan(name, async (span) => {
          try {
            return await work()
          } catch (error) {
            span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) })
            throw error
          } finally {
            span.end()
          }
        })
    } satisfies Tracing)
  },
  { name: 'tracing', dependencies: ['config'] }
)
