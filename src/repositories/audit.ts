// The audit trail of security events. A failure to record is logged, never
// turned into a failed request: the event it describes has already happened.
// One exception: a successful password login's event is written by the same
// statement as its session (sessions repository), so a login is recorded
// whenever it succeeds, and fails as a whole when it cannot be recorded.
//
// `user_id`, `client_id` and `session_id` name the actor: the caller's account
// and session, or the service client. What an administrative action was done
// to goes into `details` (`target_user_id`, `target_client_id`); the target
// account is also kept in a column of its own, so that the events about an
// account are found through an index. Login events name the account that
// was tried (when it exists).

import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { Prisma, type PrismaClient } from '../generated/prisma/client.js'
import type { Principal } from '../plugins/infra/jwt.js'
import type { AuditEventsQuery, AuditKind } from '../schemas/audit.js'
import { afterKey, decodeCursor, keyOrder, toPage } from './cursor.js'

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

/** An event as the list query returns it. */
interface AuditRecord {
  id: string
  kind: string
  user_id: string | null
  client_id: string | null
  session_id: string | null
  ip: string | null
  user_agent: string | null
  details: Prisma.JsonValue
  created_at: Date
}

const toAuditEventDto = (record: AuditRecord) => ({
  id: record.id,
  kind: record.kind,
  user_id: record.user_id,
  client_id: record.client_id,
  session_id: record.session_id,
  ip: record.ip,
  user_agent: record.user_agent,
  details:
    record.details !== null && typeof record.details === 'object' && !Array.isArray(record.details) ? record.details : null,
  created_at: record.created_at.toISOString()
})

const AUDIT_COLUMNS = Prisma.sql`id, kind, user_id, client_id, session_id, ip, user_agent, details, created_at`

/** Where a request came from, as an audit row stores it (cut to the columns' sizes). */
export interface AuditSource {
  ip: string
  userAgent: string | null
}

export const auditSource = (request: FastifyRequest): AuditSource => ({
  ip: request.ip.slice(0, 64),
  userAgent: request.headers['user-agent']?.slice(0, 512) ?? null
})

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export function createAuditLog(prisma: PrismaClient, log: FastifyBaseLogger) {
  return {
    async record(kind: AuditKind, request: FastifyRequest, entry: AuditEntry = {}) {
      const target = entry.details?.target_user_id
      try {
        // `select` keeps Prisma from reading the new row back: nothing uses it.
        await prisma.auditEvent.create({
          data: { kind, ...entry, targetUserId: typeof target === 'string' && UUID.test(target) ? target : undefined, ...auditSource(request) },
          select: { id: true }
        })
      } catch (error) {
        log.error({ err: error, kind }, 'could not record an audit event')
      }
    },

    /**
     * Newest first; `userId` matches events by the account and administrative
     * actions on it. Each filter is the leading column of an index whose
     * range after the cursor is read in order; `user_id` is two such ranges
     * (by the account, about it), merged.
     */
    async list(query: AuditEventsQuery) {
      const after = afterKey(decodeCursor(query.cursor), 'desc')
      const kind = query.kind ? Prisma.sql`AND kind = ${query.kind}` : Prisma.empty
      const take = query.limit + 1
      const page = (who: Prisma.Sql) => Prisma.sql`
        SELECT ${AUDIT_COLUMNS} FROM audit_events WHERE ${who} ${kind} AND ${after} ORDER BY ${keyOrder('desc')} LIMIT ${take}`
      const records = await prisma.$queryRaw<AuditRecord[]>(
        query.user_id
          ? Prisma.sql`
              SELECT * FROM ((${page(Prisma.sql`user_id = ${query.user_id}::uuid`)})
                UNION (${page(Prisma.sql`target_user_id = ${query.user_id}::uuid`)})) AS events
              ORDER BY ${keyOrder('desc')} LIMIT ${take}`
          : page(Prisma.sql`TRUE`)
      )
      return toPage(records.map((record) => ({ ...record, createdAt: record.created_at })), query.limit, toAuditEventDto)
    }
  }
}

export type AuditLog = ReturnType<typeof createAuditLog>
