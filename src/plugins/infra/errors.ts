// The one error handler: every error leaves the service in the contract's
// shape. Problem details (RFC 9457) everywhere, RFC 6749 errors on routes that
// set `config.oauthErrors`, an HTML page on the browser pages (`config.page`,
// see plugins/app/pages.ts), and never a stack trace or internal message on 5xx.
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { type FieldError, OAuthError, ProblemError, serviceUnavailable } from '../../lib/errors.js'
import { isDatabaseUnavailable } from '../../lib/database-errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Answer errors of this route as RFC 6749 token errors. */
    oauthErrors?: boolean
  }
}

interface ValidationIssue {
  instancePath: string
  keyword: string
  params: Record<string, unknown>
  message?: string
}

/** At most this many field errors in an answer, however many a request has. */
const MAX_FIELD_ERRORS = 5

/** Names the offending field of each schema violation ("title", "limit", "body"). */
export function fieldErrors(validation: ValidationIssue[], context: string | undefined): FieldError[] {
  return validation.slice(0, MAX_FIELD_ERRORS).map((issue) => {
    const path = issue.instancePath.split('/').filter(Boolean)
    const missing = issue.params.missingProperty ?? issue.params.additionalProperty
    if (typeof missing === 'string') path.push(missing)
    const field = path.length > 0 ? path.join('.') : (context ?? 'body')
    const message =
      issue.keyword === 'additionalProperties' ? 'is not an allowed property' : (issue.message ?? 'is invalid')
    return { field, message }
  })
}

/** The heading of an error page, in a person's words. */
function pageTitle(status: number): string {
  if (status === 429) return 'Too many attempts'
  return status >= 500 ? 'Temporarily unavailable' : 'This did not work'
}

function sendProblem(
  reply: FastifyReply,
  status: number,
  detail: string,
  extra: { errors?: FieldError[]; headers?: Record<string, string> } = {}
) {
  if (extra.headers) reply.headers(extra.headers)
  if (reply.request.routeOptions.config?.page === true) {
    return reply.page('error', { title: pageTitle(status), detail, errors: extra.errors }, status)
  }
  return reply
    .code(status)
    .type('application/problem+json')
    .send({
      type: 'about:blank',
      title: STATUS_CODES[status] ?? 'Error',
      status,
      detail,
      ...(extra.errors ? { errors: extra.errors } : {})
    })
}

function sendOAuthError(reply: FastifyReply, status: number, error: string, description: string, extra: Record<string, string> = {}) {
  return reply
    .code(status)
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
    .type('application/json')
    .send({ error, error_description: description, ...extra })
}

function handleError(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) {
  const oauth = request.routeOptions.config?.oauthErrors === true

  if (error instanceof OAuthError) {
    reply.headers(error.headers)
    return sendOAuthError(reply, error.statusCode, error.error, error.message, error.extra)
  }
  if (error instanceof ProblemError) {
    return sendProblem(reply, error.statusCode, error.message, { errors: error.errors, headers: error.headers })
  }

  const fastifyError = error as FastifyError
  if (fastifyError.validation) {
    const errors = fieldErrors(fastifyError.validation, fastifyError.validationContext)
    if (oauth) {
      const fields = [...new Set(errors.map((e) => e.field))].join(', ')
      return sendOAuthError(reply, 400, 'invalid_request', `Invalid or missing parameter: ${fields}.`)
    }
    return sendProblem(reply, 400, 'The request is not valid.', { errors })
  }

  if (isDatabaseUnavailable(error)) {
    request.log.warn({ err: error }, 'database unavailable')
    const problem = serviceUnavailable()
    return sendProblem(reply, problem.statusCode, problem.message, { headers: problem.headers })
  }

  const status = fastifyError.statusCode ?? 500
  if (status >= 400 && status < 500) {
    // Fastify's own 4xx errors (bad JSON, wrong content type, body too large) carry safe messages.
    if (oauth && status === 400) return sendOAuthError(reply, 400, 'invalid_request', error.message)
    return sendProblem(reply, status, error.message)
  }

  request.log.error({ err: error }, 'unhandled error')
  return sendProblem(reply, status >= 500 && status < 600 ? status : 500, 'An unexpected error occurred.')
}

/** What Node's HTTP parser refused, as a status and a detail. */
function clientErrorProblem(code: string | undefined): [number, string] {
  if (code === 'HPE_HEADER_OVERFLOW') return [431, 'The request headers are too large.']
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return [408, 'The request took too long to arrive.']
  return [400, 'The request is not valid HTTP.']
}

/**
 * Fastify's `clientErrorHandler`: answers requests that Node's HTTP parser
 * refuses before any route sees them (oversized headers, malformed request
 * lines, timeouts) with a problem body, then closes the connection as Node does.
 */
export function clientErrorHandler(this: FastifyInstance, error: Error & { code?: string }, socket: Socket) {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const [status, detail] = clientErrorProblem(error.code)
  const title = STATUS_CODES[status] ?? 'Error'
  const body = JSON.stringify({ type: 'about:blank', title, status, detail })
  this.log.debug({ err: error }, 'client error')
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${title}\r\nContent-Type: application/problem+json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
    )
  }
  socket.destroy(error)
}

/**
 * Fastify's `frameworkErrors`: URLs the router cannot even decode (bad
 * percent-encoding, a path parameter over the length limit) never reach a
 * route or the error handler, so they are answered as problems here.
 */
export function frameworkErrors(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400
  const detail =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'A path segment is too long.' : 'The URL is not validly encoded.'
  void sendProblem(reply, status, detail)
}

export default fp(
  async function errorsPlugin(fastify) {
    fastify.setErrorHandler(handleError)
    // A request refused before its body was read (a rate limit, a missing
    // token, a body over the limit) closes its connection: to keep it open,
    // Node would read and throw away the rest of the body, and a client could
    // make the service read bodies as fast as it can send them, past every
    // limit, at the cost of every other request.
    fastify.addHook('onSend', async (request, reply) => {
      const { headers } = request
      const hasBody = headers['transfer-encoding'] !== undefined || (headers['content-length'] ?? '0') !== '0'
      if (reply.statusCode >= 400 && hasBody && request.raw.complete === false) reply.header('connection', 'close')
    })
    fastify.setNotFoundHandler((request, reply) =>
      sendProblem(reply, 404, `No route for ${request.method} ${request.url.split('?')[0]}.`)
    )
  },
  { name: 'errors' }
)
