// The audit trail, for holders of `audit:read` (admins, and service clients
// granted it): who signed in from where, and what was changed.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AuditEvent, AuditEventsQuery } from '../schemas/audit.js'
import { Page, problems } from '../schemas/common.js'

const auditRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { auditLog } = fastify

  fastify.get(
    '/audit-events',
    {
      onRequest: [fastify.authenticate, fastify.requireScope('audit:read')],
      schema: {
        tags: ['Administration'],
        summary: 'Security events',
        operationId: 'listAuditEvents',
        description:
          'Logins and their failures, lockouts, refreshes, refresh-token reuse, logouts, revocations, password changes, and changes to users and service clients; newest first, in pages of `limit`. `user_id` matches events by that account and administrative actions on it; `kind` one kind of event.',
        security: [{ oauth2: ['audit:read'] }],
        querystring: AuditEventsQuery,
        response: {
          200: Page(AuditEvent, 'A page of security events, newest first.'),
          ...problems({
            400: 'Invalid query',
            401: 'Missing, invalid or revoked token',
            403: 'Needs audit:read'
          })
        }
      }
    },
    async (request) => auditLog.list(request.query)
  )
}

export default auditRoutes
