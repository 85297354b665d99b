// Exposes the repositories as decorators. Routes call these and never build
// queries themselves.
import fp from 'fastify-plugin'
import { type AuditLog, createAuditLog } from '../../repositories/audit.js'
import { type AuthorizationCodesRepository, createAuthorizationCodesRepository } from '../../repositories/authorization-codes.js'
import { type BrowserSessionsRepository, createBrowserSessionsRepository } from '../../repositories/browser-sessions.js'
import { type ConsentsRepository, createConsentsRepository } from '../../repositories/consents.js'
import { type ClientsRepository, createClientsRepository } from '../../repositories/clients.js'
import { createEmailTokensRepository, type EmailTokensRepository } from '../../repositories/email-tokens.js'
import { createMailOutboxRepository, type MailOutboxRepository } from '../../repositories/mail-outbox.js'
import { createMfaRepository, type MfaRepository } from '../../repositories/mfa.js'
import { createPostsRepository, type PostsRepository } from '../../repositories/posts.js'
import { createSessionsRepository, type SessionsRepository } from '../../repositories/sessions.js'
import { createUsersRepository, type UsersRepository } from '../../repositories/users.js'

declare module 'fastify' {
  interface FastifyInstance {
    usersRepository: UsersRepository
    postsRepository: PostsRepository
    sessionsRepository: SessionsRepository
    clientsRepository: ClientsRepository
    authorizationCodesRepository: AuthorizationCodesRepository
    browserSessionsRepository: BrowserSessionsRepository
    consentsRepository: ConsentsRepository
    emailTokensRepository: EmailTokensRepository
    mailOutboxRepository: MailOutboxRepository
    mfaRepository: MfaRepository
    auditLog: AuditLog
  }
}

export default fp(
  async function repositoriesPlugin(fastify) {
    const sessions = createSessionsRepository(fastify.prisma, fastify.revocations, fastify.config, fastify.appSecret)
    fastify.decorate('sessionsRepository', sessions)
    const users = createUsersRepository(fastify.prisma, sessions)
    fastify.decorate('usersRepository', users)
    fastify.decorate('mfaRepository', createMfaRepository(fastify.prisma, users, sessions))
    fastify.decorate('postsRepository', createPostsRepository(fastify.prisma))
    fastify.decorate('clientsRepository', createClientsRepository(fastify.prisma, sessions, fastify.clientCache))
    fastify.decorate('authorizationCodesRepository', createAuthorizationCodesRepository(fastify.prisma, sessions))
    fastify.decorate('browserSessionsRepository', createBrowserSessionsRepository(fastify.prisma, fastify.config.SIGN_IN_SESSION_TTL))
    fastify.decorate('consentsRepository', createConsentsRepository(fastify.prisma, sessions))
    // Audit events are written in batches: what waits, and what was lost, is for operators to see.
    const lost = fastify.metrics.counter({
      name: 'blog_api_audit_events_lost_total',
      help: 'Audit events not written: queue_full (the database did not keep up), write_failed (it refused them or could not be reached).',
      labelNames: ['reason']
    })
    for (const reason of ['queue_full', 'write_failed']) lost.inc({ reason }, 0)
    const auditLog = createAuditLog(fastify.prisma, fastify.log, (reason, events) => lost.inc({ reason }, events))
    fastify.metrics.gauge({
      name: 'blog_api_audit_events_waiting',
      help: 'Audit events recorded and not yet written to the database.',
      collect() {
        this.set(auditLog.waiting())
      }
    })
    fastify.decorate('auditLog', auditLog)
    // Before the Prisma client disconnects (hooks close in reverse order of registration).
    fastify.addHook('onClose', async () => {
      await auditLog.flush()
    })
    const emailTokens = createEmailTokensRepository(fastify.prisma, users, sessions)
    fastify.decorate('emailTokensRepository', emailTokens)
    fastify.decorate('mailOutboxRepository', createMailOutboxRepository(fastify.prisma, emailTokens, { resetTokenTtlMs: fastify.config.RESET_TOKEN_TTL * 1000 }))
  },
  { name: 'repositories', dependencies: ['prisma', 'metrics', 'revocations', 'client-cache', 'config', 'app-secret'] }
)
