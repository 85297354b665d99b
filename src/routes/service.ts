// Service routes: the index, liveness, readiness and the public key set.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { serviceUnavailable } from '../lib/errors.js'
import { Jwks } from '../schemas/auth.js'
import { problems } from '../schemas/common.js'

/**
 * A database that hangs (frozen, or a network that drops packets) would keep
 * the probe waiting for the 15 s query timeout; a load balancer should take
 * the instance out well before that.
 */
const READY_TIMEOUT_MS = 2000

/** The work's result, or a rejection if it takes longer than `ms`. */
async function within<T>(ms: number, work: PromiseLike<T>): Promise<T> {
  // Started once, here (a Prisma query runs when it is first awaited).
  const running = Promise.resolve(work)
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  // What is given up on may still fail later; that is no longer anyone's concern.
  running.catch(() => undefined)
  try {
    return await Promise.race([running, timeout])
  } finally {
    clearTimeout(timer)
  }
}

const serviceRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const docs = fastify.config.DOCS_ENABLED
  fastify.get(
    '/',
    {
      schema: {
        tags: ['Service'],
        operationId: 'index',
        summary: 'Index',
        description: 'What this service is, and where its docs are (`docs` is absent when the docs page is switched off).',
        response: {
          200: Type.Object(
            {
              message: Type.String(),
              docs: Type.Optional(Type.String({ description: 'The path of the docs page.' }))
            },
            {
              description: 'The index.',
              examples: [{ message: 'Blog API: accounts, OAuth2 tokens and posts. The docs are at /docs.', docs: '/docs' }]
            }
          ),
          ...problems({})
        }
      }
    },
    async () =>
      docs
        ? { message: 'Blog API: accounts, OAuth2 tokens and posts. The docs are at /docs.', docs: '/docs' }
        : { message: 'Blog API: accounts, OAuth2 tokens and posts.' }
  )

  fastify.get(
    '/health',
    {
      // Liveness, not capacity: a busy process is still alive (see under-pressure.ts).
      config: { pressureExempt: true },
      schema: {
        tags: ['Service'],
        operationId: 'health',
        summary: 'Liveness',
        description: 'Answers while the process runs; never touches the database. For a liveness probe.',
        response: {
          200: Type.Object({ status: Type.Literal('ok') }, { description: 'The process runs.', examples: [{ status: 'ok' }] }),
          ...problems({})
        }
      }
    },
    async () => ({ status: 'ok' as const })
  )

  fastify.get(
    '/ready',
    {
      schema: {
        tags: ['Service'],
        operationId: 'ready',
        summary: 'Readiness',
        description:
          'Answers 200 when the database answers within 2 seconds, else 503. For a readiness probe or a load balancer.',
        response: {
          200: Type.Object(
            { status: Type.Literal('ready') },
            { description: 'The database answers.', examples: [{ status: 'ready' }] }
          ),
          ...problems({ 503: 'The database is unreachable, or does not answer within 2 seconds' })
        }
      }
    },
    async () => {
      try {
        await within(READY_TIMEOUT_MS, fastify.prisma.$queryRaw`SELECT 1`)
      } catch (error) {
        fastify.log.warn({ err: error }, 'readiness check failed')
        throw serviceUnavailable('The database is unreachable.')
      }
      return { status: 'ready' as const }
    }
  )

  fastify.get(
    '/.well-known/jwks.json',
    {
      schema: {
        tags: ['Service'],
        operationId: 'jwks',
        summary: 'Public keys (JWKS)',
        description:
          'The keys that verify access tokens (RFC 7517); empty when tokens are signed with HS256. Cacheable for 5 minutes.',
        response: { 200: Jwks, ...problems({}) }
      }
    },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300')
      return { keys: fastify.signingKeys.jwks }
    }
  )
}

export default serviceRoutes
