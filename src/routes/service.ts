// Service routes: the index, liveness, readiness and the public key set.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { serviceUnavailable } from '../lib/errors.js'
import { Jwks } from '../schemas/auth.js'
import { problems } from '../schemas/common.js'

const serviceRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get(
    '/',
    {
      schema: {
        tags: ['Service'],
        operationId: 'index',
        summary: 'Index',
        description: 'What this service is, and where its docs are.',
        response: {
          200: Type.Object(
            { message: Type.String(), docs: Type.String({ description: 'The path of the docs page.' }) },
            {
              description: 'The index.',
              examples: [{ message: 'Blog API: accounts, OAuth2 tokens and posts. The docs are at /docs.', docs: '/docs' }]
            }
          ),
          ...problems({})
        }
      }
    },
    async () => ({ message: 'Blog API: accounts, OAuth2 tokens and posts. The docs are at /docs.', docs: '/docs' })
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
        description: 'Answers 200 when the database answers, else 503. For a readiness probe or a load balancer.',
        response: {
          200: Type.Object(
            { status: Type.Literal('ready') },
            { description: 'The database answers.', examples: [{ status: 'ready' }] }
          ),
          ...problems({ 503: 'The database is unreachable' })
        }
      }
    },
    async () => {
      try {
        await fastify.prisma.$queryRaw`SELECT 1`
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
