// Service routes: the index, liveness, readiness and the public key set.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { ProblemError } from '../lib/errors.js'
import { Jwks } from '../schemas/auth.js'
import { problems } from '../schemas/common.js'

const serviceRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get(
    '/',
    {
      schema: {
        tags: ['Service'],
        summary: 'Index',
        response: { 200: Type.Object({ message: Type.String(), docs: Type.String() }) }
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
        summary: 'Liveness',
        description: 'Answers while the process runs; never touches the database.',
        response: { 200: Type.Object({ status: Type.Literal('ok') }) }
      }
    },
    async () => ({ status: 'ok' as const })
  )

  fastify.get(
    '/ready',
    {
      schema: {
        tags: ['Service'],
        summary: 'Readiness',
        description: 'Answers 200 when the database answers, else 503.',
        response: { 200: Type.Object({ status: Type.Literal('ready') }), ...problems({ 503: 'The database is unreachable' }) }
      }
    },
    async () => {
      try {
        await fastify.prisma.$queryRaw`SELECT 1`
      } catch (error) {
        fastify.log.warn({ err: error }, 'readiness check failed')
        throw new ProblemError(503, 'The database is unreachable.', { headers: { 'retry-after': '5' } })
      }
      return { status: 'ready' as const }
    }
  )

  fastify.get(
    '/.well-known/jwks.json',
    {
      schema: {
        tags: ['Service'],
        summary: 'Public keys (JWKS)',
        description: 'The keys that verify access tokens (RFC 7517); empty when tokens are signed with HS256.',
        response: { 200: Jwks }
      }
    },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300')
      return { keys: fastify.signingKeys.jwks }
    }
  )
}

export default serviceRoutes
