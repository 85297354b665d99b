// Request logging at the cost of one log line per request, the line
// operators expect: method, URL, status and time, written when the answer
// has gone. Fastify's own logging writes two lines per request ("incoming
// request", "request completed") and gives every request a child logger,
// which pino builds by running the service's redaction paths over its
// bindings: together about a third of a cached read's CPU at `info`, and a
// tenth even at `silent` (see BENCHMARKS.md).
//
// - `RequestLogController` writes the one line: the request id, method, URL,
//   client address, status and time, as flat fields (nested objects cost
//   pino a JSON.stringify each). Never headers or bodies, so it is written by
//   a logger without the redaction pass; the one secret a URL can carry (the
//   token of an emailed link) is blanked by `redactUrl` instead.
// - `lazyChildLogger` gives each request a logger that becomes a real pino
//   child (with the request id, and redaction) only when something logs
//   through it at an enabled level: an error, a warning.
import { type FastifyBaseLogger, type FastifyReply, type FastifyRequest, type FastifyServerOptions, LogController } from 'fastify'

/**
 * A URL as logged: the value of a `token` query parameter blanked (the links
 * sent by email carry one, and the pages they open receive it in the URL).
 */
export function redactUrl(url: string): string {
  return url.replace(/([?&;]token=)[^&#;]*/gi, '$1[redacted]')
}

const lineLoggers = new WeakMap<FastifyBaseLogger, FastifyBaseLogger>()

/** A child of the root logger that shares its stream, level and serializers but skips redaction. */
function lineLogger(root: FastifyBaseLogger): FastifyBaseLogger {
  let logger = lineLoggers.get(root)
  if (!logger) {
    logger = root.child({}, { redact: [] })
    lineLoggers.set(root, logger)
  }
  return logger
}

export class RequestLogController extends LogController {
  override incomingRequest(): void {
    // The one line is written when the answer has gone (requestCompleted).
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return
    if (error) {
      // Rare, and with an error object whose content is not ours: through the redacting logger.
      reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored')
      return
    }
    lineLogger(request.server.log).info(
      {
        [this.requestIdLogLabel]: request.id,
        method: request.method,
        url: redactUrl(request.url),
        remoteAddress: request.ip,
        statusCode: reply.statusCode,
        responseTime: reply.elapsedTime
      },
      'request completed'
    )
  }
}

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const
type Level = keyof typeof LEVELS
type Bindings = Parameters<FastifyBaseLogger['child']>[0]
type ChildOptions = Parameters<FastifyBaseLogger['child']>[1]

/**
 * A request's logger: the pino child is made on the first call at a level
 * its parent writes. Methods on the prototype, so that a request that logs
 * nothing costs one small object.
 */
class LazyChildLogger implements FastifyBaseLogger {
  #child: FastifyBaseLogger | undefined

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly options: ChildOptions
  ) {}

  #real(): FastifyBaseLogger {
    this.#child ??= this.parent.child(this.bindings, this.options)
    return this.#child
  }

  #log(level: Level, args: unknown[]) {
    const threshold = (this.#child ?? this.parent).level
    if (LEVELS[level] < (LEVELS[threshold as Level] ?? Infinity)) return
    const child = this.#real()
    Reflect.apply(child[level], child, args)
  }

  fatal(...args: unknown[]) {
    this.#log('fatal', args)
  }
  error(...args: unknown[]) {
    this.#log('error', args)
  }
  warn(...args: unknown[]) {
    this.#log('warn', args)
  }
  info(...args: unknown[]) {
    this.#log('info', args)
  }
  debug(...args: unknown[]) {
    this.#log('debug', args)
  }
  trace(...args: unknown[]) {
    this.#log('trace', args)
  }
  silent() {}

  child(bindings: Bindings, options?: ChildOptions): FastifyBaseLogger {
    return this.#real().child(bindings, options)
  }

  get level(): string {
    return (this.#child ?? this.parent).level
  }
  set level(level: string) {
    this.#real().level = level
  }
}

/** Fastify's `childLoggerFactory`: a request's logger, made a pino child on its first enabled log call. */
export const lazyChildLogger: NonNullable<FastifyServerOptions['childLoggerFactory']> = function lazyChildLogger(logger, bindings, options) {
  // A route's own level or serializers: the child differs from its parent from the start.
  if (options.level !== undefined || options.serializers !== undefined) return logger.child(bindings, options)
  return new LazyChildLogger(logger, bindings, options)
}
