// The application as one plugin, and the Fastify options it expects. The
// server and the tests build it the same way:
//   Fastify(serverOptions(config)).register(app, { config })
// Plugins load in layers, their order declared by name and dependencies:
// infrastructure (config, tracing, errors, metrics, database, Redis, JWT, docs,
// security), then the
// application's services (passwords, tokens, revocations, repositories,
// authentication, login throttling, second factors, email, pages), then the routes.
import cookie from '@fastify/cookie'
import type { FastifyHttpOptions, FastifyInstance, FastifyRequest, FastifyServerOptions } from 'fastify'
import type { Server } from 'node:http'
import { Ajv, type Options as AjvOptions } from 'ajv'
import addFormats from 'ajv-formats'
import fp from 'fastify-plugin'
import pino from 'pino'
import { type Config, trustProxy } from './config.js'
import { lazyChildLogger, redactUrl, RequestLogController } from './lib/request-log.js'
import accountEmail from './plugins/app/account-email.js'
import authenticate from './plugins/app/authenticate.js'
import bootstrapAdmin from './plugins/app/bootstrap-admin.js'
import clientCache from './plugins/app/client-cache.js'
import housekeeping from './plugins/app/housekeeping.js'
import loginThrottle from './plugins/app/login-throttle.js'
import mailer from './plugins/app/mailer.js'
import mfa from './plugins/app/mfa.js'
import oauth from './plugins/app/oauth.js'
import pages from './plugins/app/pages.js'
import passwords from './plugins/app/passwords.js'
import postCache from './plugins/app/post-cache.js'
import repositories from './plugins/app/repositories.js'
import revocations from './plugins/app/revocations.js'
import tokens from './plugins/app/tokens.js'
import appSecret from './plugins/infra/app-secret.js'
import bodyParsers from './plugins/infra/body-parsers.js'
import configPlugin from './plugins/infra/config.js'
import errors, { clientErrorHandler, frameworkErrors } from './plugins/infra/errors.js'
import jwt from './plugins/infra/jwt.js'
import metrics from './plugins/infra/metrics.js'
import notifications from './plugins/infra/notifications.js'
import prisma from './plugins/infra/prisma.js'
import redis from './plugins/infra/redis.js'
import routeDefaults from './plugins/infra/route-defaults.js'
import security from './plugins/infra/security.js'
import swagger from './plugins/infra/swagger.js'
import tracing, { traceIds, tracingEnabled } from './plugins/infra/tracing.js'
import underPressure from './plugins/infra/under-pressure.js'
import accountPages from './routes/account-pages.js'
import auditRoutes from './routes/audit.js'
import authRoutes from './routes/auth.js'
import clientsRoutes from './routes/clients.js'
import emailRoutes from './routes/email.js'
import mfaRoutes from './routes/mfa.js'
import discoveryRoutes from './routes/discovery.js'
import oauthAuthorizeRoutes from './routes/oauth-authorize.js'
import oauthResourceRoutes from './routes/oauth-resources.js'
import postsRoutes from './routes/posts.js'
import serviceRoutes from './routes/service.js'
import usersRoutes from './routes/users.js'

export interface AppOptions {
  config: Config
  /** In the embedded development mode: where a generated signing key and secret are kept. */
  developmentDir?: string
}

const SECRET_FIELDS = ['password', 'current_password', 'new_password', 'client_secret', 'refresh_token', 'access_token', 'token', 'mfa_token', 'otp', 'secret', 'otpauth_uri', 'recovery_codes']
const CREDENTIAL_HEADERS = ['.authorization', '.cookie', '["proxy-authorization"]', '["set-cookie"]']

/**
 * Log lines never carry credentials. Fastify's own request lines hold no
 * headers or bodies; these paths also blank credentials wherever code logs a
 * request's headers or body itself (test/logging.test.ts proves both).
 */
export const REDACTED_PATHS = [
  ...['req.', 'res.', '*.', ''].flatMap((at) => CREDENTIAL_HEADERS.map((header) => `${at}headers${header}`)),
  ...SECRET_FIELDS.flatMap((field) => [field, `*.${field}`, `*.*.${field}`])
]

/**
 * Pino options of the service's logger: the level, the redaction of
 * credentials (link tokens in logged URLs too), and (with tracing on) the trace and span ids of the request a
 * line was written in, to find its trace.
 */
export function loggerOptions(config: Config) {
  return {
    level: config.LOG_LEVEL,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    serializers: {
      // Fastify's own request serializer, with the link tokens of page URLs blanked.
      req: (request: FastifyRequest) => ({
        method: request.method,
        url: redactUrl(request.url),
        host: request.host,
        remoteAddress: request.ip,
        remotePort: request.socket?.remotePort
      })
    },
    ...(tracingEnabled() ? { mixin: traceIds } : {})
  }
}

/**
 * Where the server's log lines go: standard output through a buffer, written
 * out (by the event loop's thread, not a worker) when it holds 4 KiB, every
 * 100 ms, and when the process exits, so that logging costs no system call
 * per line; `flush()` writes it out at once. A process killed outright loses
 * at most the last 100 ms of lines. (An asynchronous destination measured
 * worse: each write hands a buffer to a libuv thread.)
 */
export function logStream() {
  const stream = pino.destination({ dest: 1, sync: true, minLength: 4096, periodicFlush: 100 })
  process.once('exit', () => stream.flushSync())
  return stream
}

/** TRUST_PROXY (validated by loadConfig) as Fastify's option: a hop count becomes a predicate on the hop. */
function fastifyTrustProxy(config: Config): FastifyServerOptions['trustProxy'] {
  const trusted = trustProxy(config)
  return typeof trusted === 'number' ? (_address: string, hop: number) => hop < trusted : trusted
}

/** `stream`: where the log lines go (default: standard output, one write per line). */
export function serverOptions(config: Config, stream?: ReturnType<typeof logStream>): FastifyHttpOptions<Server> {
  return {
    logger: {
      ...loggerOptions(config),
      // `npm run dev` sets LOG_PRETTY; production keeps one JSON object per line.
      ...(config.LOG_PRETTY
        ? { transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } }
        : stream
          ? { stream }
          : {})
    },
    // One line per request, and a request's logger made only when it logs (src/lib/request-log.ts).
    logController: new RequestLogController(),
    childLoggerFactory: lazyChildLogger,
    trustProxy: fastifyTrustProxy(config),
    // The ceiling; each route has a limit of its own (route-defaults.ts).
    bodyLimit: config.BODY_LIMIT,
    // A request must arrive, headers and body, within REQUEST_TIMEOUT, and an
    // idle connection closes after it. Node checks the request deadlines only
    // every `connectionsCheckingInterval` (30 s by default) and computes its
    // headers deadline (60 s by default) when the server is created, before
    // Fastify sets requestTimeout: without these, a slow client was held for
    // up to 90 s against a 30 s timeout.
    connectionTimeout: config.REQUEST_TIMEOUT * 1000,
    requestTimeout: config.REQUEST_TIMEOUT * 1000,
    http: {
      requestTimeout: config.REQUEST_TIMEOUT * 1000,
      headersTimeout: config.REQUEST_TIMEOUT * 1000,
      connectionsCheckingInterval: Math.min(1000, config.REQUEST_TIMEOUT * 250)
    },
    keepAliveTimeout: 72_000,
    return503OnClosing: true,
    // Requests that Node's HTTP parser (oversized headers, malformed request
    // lines) or the router (undecodable URLs) refuse get a problem body too.
    clientErrorHandler,
    frameworkErrors,
    routerOptions: { maxParamLength: 200 }
  }
}

function strictAjv(coerceTypes: AjvOptions['coerceTypes']) {
  const ajv = new Ajv({
    coerceTypes,
    useDefaults: true,
    removeAdditional: false,
    // Stop at the first violation: collecting all of them made a body with
    // 70,000 unknown properties cost half a second of event loop and a 4 MB
    // answer. A client learns one thing to fix at a time.
    allErrors: false,
    strict: false
  })
  addFormats.default(ajv, ['email', 'uuid', 'date-time'])
  return ajv
}

async function app(fastify: FastifyInstance, options: AppOptions) {
  // Bodies are validated as sent (no "123" → 123 coercion, unknown properties
  // refused); query strings and params are text, so they are coerced.
  const bodyAjv = strictAjv(false)
  const textAjv = strictAjv('array')
  fastify.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? bodyAjv : textAjv).compile(schema)
  )

  await fastify.register(configPlugin, { config: options.config })
  // First after the configuration: tracing wraps every route and hook added after it.
  await fastify.register(tracing)
  await fastify.register(routeDefaults)
  await fastify.register(errors)
  await fastify.register(metrics)
  await fastify.register(bodyParsers)
  await fastify.register(underPressure)
  await fastify.register(prisma)
  await fastify.register(notifications)
  await fastify.register(redis)
  await fastify.register(jwt, { developmentDir: options.developmentDir })
  await fastify.register(appSecret, { developmentDir: options.developmentDir })
  await fastify.register(cookie)
  await fastify.register(security)
  await fastify.register(swagger)

  await fastify.register(passwords)
  await fastify.register(revocations)
  await fastify.register(tokens)
  await fastify.register(postCache)
  await fastify.register(clientCache)
  await fastify.register(repositories)
  await fastify.register(oauth)
  await fastify.register(pages)
  await fastify.register(authenticate)
  await fastify.register(loginThrottle)
  await fastify.register(mfa, { developmentDir: options.developmentDir })
  await fastify.register(bootstrapAdmin)
  await fastify.register(housekeeping)
  await fastify.register(mailer, { developmentDir: options.developmentDir })
  await fastify.register(accountEmail)

  await fastify.register(serviceRoutes)
  await fastify.register(authRoutes)
  await fastify.register(usersRoutes)
  await fastify.register(mfaRoutes)
  await fastify.register(postsRoutes)
  await fastify.register(clientsRoutes)
  await fastify.register(discoveryRoutes)
  await fastify.register(oauthResourceRoutes)
  await fastify.register(oauthAuthorizeRoutes)
  await fastify.register(auditRoutes)
  // Without email, no route needs it: they are left out, and so out of the docs.
  if (fastify.mail.enabled) {
    await fastify.register(emailRoutes)
    await fastify.register(accountPages)
  }
}

// Not encapsulated: the error handler and validators apply to the whole server.
export default fp(app, { name: 'app' })
