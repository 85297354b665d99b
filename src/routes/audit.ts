// The audit trail, for admins. An admin is an active account with the admin
// role, checked in the database at each request, as for editing others' posts:
// no scope grants it, so no service client can read who logged in from where.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { forbidden } from '../lib/errors.js'
import { AuditEvent, AuditEventsQuery } from '../schemas/audit.js'
import { Page, problems } from '../schemas/common.js'

const auditRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { auditLog, usersRepository: users } = fastify

  fastify.get(
    '/audit-events',
    {
      onRequest: [fastify.authenticate, fastify.requireUser],
      schema: {
        tags: ['Administration'],
        summary: 'Security events (admins)',
        operationId: 'listAuditEvents',
        description:
          'Logins and their failures, lockouts, refreshes, refresh-token reuse, logouts, revocations, password changes, and changes to users and service clients; newest first, in pages of `limit`. `user_id` matches events by that account and administrative actions on it; `kind` one kind of event.',
        security: [{ oauth2: [] }],
        querystring: AuditEventsQuery,
        response: {
          200: Page(AuditEvent, 'A page of security events, newest first.'),
          ...problems({
            400: 'Invalid query',
            401: 'Missing, invalid or revoked token',
            403: 'Not an admin (service clients never are)'
          })
        }
      }
    },
    async (request) => {
      if (!(await users.isAdmin(request.user.id))) throw forbidden('Only admins may read the audit trail.')
      return auditLog.list(request.query)
    }
  )
}

export default auditRoutes
