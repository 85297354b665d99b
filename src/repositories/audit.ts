// The audit trail of security events. A failure to record is logged, never
// turned into a failed request: the event it describes has already happened.
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { PrismaClient, Prisma } from '../generated/prisma/client.js'

export type AuditKind =
  | 'user.signup'
  | 'login.success'
  | 'login.failure'
  | 'token.refresh'
  | 'refresh_token.reuse'
  | 'session.logout'
  | 'session.revoked'
  | 'password.changed'
  | 'user.updated'
  | 'user.deleted'
  | 'client.created'
  | 'client.secret_rotated'
  | 'client.deleted'
  | 'client.token'
  | 'client.failure'

export interface AuditEntry {
  userId?: string
  clientId?: string
  sessionId?: string
  details?: Prisma.InputJsonValue
}

export function createAuditLog(prisma: PrismaClient, log: FastifyBaseLogger) {
  return {
    async record(kind: AuditKind, request: FastifyRequest, entry: AuditEntry = {}) {
      try {
        await prisma.auditEvent.create({
          data: {
            kind,
            ...entry,
            ip: request.ip.slice(0, 64),
            userAgent: request.headers['user-agent']?.slice(0, 512) ?? null
          }
        })
      } catch (error) {
        log.error({ err: error, kind }, 'could not record an audit event')
      }
    }
  }
}

export type AuditLog = ReturnType<typeof createAuditLog>
