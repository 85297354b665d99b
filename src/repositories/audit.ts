// The audit trail of security events. A failure to record is logged, never
// turned into a failed request: the event it describes has already happened.
// One exception: a successful password login's event is written by the same
// statement as its session (sessions repository), so a login is recorded
// whenever it succeeds, and fails as a whole when it cannot be recorded.
//
// `user_id`, `client_id` and `session_id` name the actor: the caller's account
// and session, or the service client. What an administrative action was done
// to goes into `details` (`target_user_id`, `target_client_id`). Login events
// name the account that was tried (when it exists).
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { PrismaClient, Prisma } from '../generated/prisma/client.js'
import type { Principal } from '../plugins/infra/jwt.js'
import type { AuditEventsQuery, AuditKind } from '../schemas/audit.js'
import { pageQuery, toPage } from './cursor.js'

export type { AuditKind } from '../schemas/audit.js'

export interface AuditEntry {
  userId?: string
  clientId?: string
  sessionId?: string
  details?: Prisma.InputJsonObject
}

/** The actor columns for a caller: a user with their session, or a service client. */
export const auditActor = (principal: Principal): AuditEntry =>
  principal.kind === 'user' ? { userId: principal.id, sessionId: principal.sessionId } : { clientId: principal.id }

interface AuditRow {
  id: string
  kind: string
  userId: string | null
  clientId: string | null
  sessionId: string | null
  ip: string | null
  userAgent: string | null
  details: Prisma.JsonValue
  createdAt: Date
}

const toAuditEventDto = (row: AuditRow) => ({
  id: row.id,
  kind: row.kind,
  user_id: row.userId,
  client_id: row.clientId,
  session_id: row.sessionId,
  ip: row.ip,
  user_agent: row.userAgent,
  details: row.details !== null && typeof row.details === 'object' && !Array.isArray(row.details) ? row.details : null,
  created_at: row.createdAt.toISOString()
})

/** Where a request came from, as an audit row stores it (cut to the columns' sizes). */
export interface AuditSource {
  ip: string
  userAgent: string | null
}

export const auditSource = (request: FastifyRequest): AuditSource => ({
  ip: request.ip.slice(0, 64),
  userAgent: request.headers['user-agent']?.slice(0, 512) ?? null
})

export function createAuditLog(prisma: PrismaClient, log: FastifyBaseLogger) {
  return {
    async record(kind: AuditKind, request: FastifyRequest, entry: AuditEntry = {}) {
      try {
        // `select` keeps Prisma from reading the new row back: nothing uses it.
        await prisma.auditEvent.create({ data: { kind, ...entry, ...auditSource(request) }, select: { id: true } })
      } catch (error) {
        log.error({ err: error, kind }, 'could not record an audit event')
      }
    },

    /** Newest first; `userId` matches events by the account and administrative actions on it. */
    async list(query: AuditEventsQuery) {
      const page = pageQuery(query, 'desc')
      const filters: Prisma.AuditEventWhereInput[] = [page.where]
      if (query.kind) filters.push({ kind: query.kind })
      if (query.user_id) {
        filters.push({
          OR: [{ userId: query.user_id }, { details: { path: ['target_user_id'], equals: query.user_id } }]
        })
      }
      const rows = await prisma.auditEvent.findMany({ ...page, where: { AND: filters } })
      return toPage(rows, query.limit, toAuditEventDto)
    }
  }
}

export type AuditLog = ReturnType<typeof createAuditLog>
