// The outbox of emails: a row per email to send, written by the request that
// causes it (in its transaction when there is one), and delivered after the
// answer by the mail worker of any instance (plugins/app/mailer.ts). Rows
// survive restarts; a worker leases the rows it delivers, so another instance
// takes over those of a worker that died.
//
// A password reset's row names only the address it was asked for: the worker
// looks for the account, after the answer (a row without one is deleted).
// A link's token is made when its email is about to go out (`prepare`), in a
// transaction that locks the account and decides on the account as it is
// then: an account gone, deactivated or changed since the request, an address
// no longer pending, an email of the same kind already sent to the account
// within the minute — each drops the email instead. So no token is ever stored
// in clear, a retry sends a fresh link, and the per-minute rule holds however
// many requests or instances there are.
import type { MailKind, Prisma, PrismaClient } from '../generated/prisma/client.js'
import type { AuditSource } from './audit.js'
import type { EmailTokenKind, EmailTokensRepository } from './email-tokens.js'
import { normalizeEmail } from './users.js'

export type { MailKind }
type Transaction = Prisma.TransactionClient

/** At most one email of each kind per account within this long. */
export const MAIL_INTERVAL_MS = 60_000
/** How long verification and email-change links work, and their emails are tried. */
export const VERIFICATION_TTL_MS = 24 * 3600 * 1000

/** The token kind of each email's link; notices have none. */
const TOKEN_KIND: Record<MailKind, EmailTokenKind | undefined> = {
  password_reset: 'password_reset',
  email_verification: 'email_verification',
  email_change: 'email_change',
  email_change_notice: undefined
}

/** A claimed row, leased to the worker that claimed it. */
export interface OutboxJob {
  id: string
  kind: MailKind
  userId: string | null
  recipient: string
  newEmail: string | null
  securityVersion: number | null
  sessionId: string | null
  attempts: number
  giveUpAt: Date
  createdAt: Date
  requestIp: string | null
  requestUserAgent: string | null
}

/** What the worker does with a job: send this email now, or drop it (and why). */
export type Prepared =
  | {
      outcome: 'send'
      to: string
      /** The link's token, made just now; absent for a notice. */
      token?: string
      expiresAt?: Date
    }
  | { outcome: 'drop'; reason: string }

interface JobRow {
  id: string
  kind: MailKind
  user_id: string | null
  recipient: string
  new_email: string | null
  security_version: number | null
  session_id: string | null
  attempts: number
  give_up_at: Date
  created_at: Date
  request_ip: string | null
  request_user_agent: string | null
}

interface AccountRow {
  id: string
  email: string
  pending_email: string | null
  is_active: boolean
  security_version: number
  email_verified_at: Date | null
}

const toJob = (row: JobRow): OutboxJob => ({
  id: row.id,
  kind: row.kind,
  userId: row.user_id,
  recipient: row.recipient,
  newEmail: row.new_email,
  securityVersion: row.security_version,
  sessionId: row.session_id,
  attempts: row.attempts,
  giveUpAt: row.give_up_at,
  createdAt: row.created_at,
  requestIp: row.request_ip,
  requestUserAgent: row.request_user_agent
})

export interface NewMail {
  kind: MailKind
  userId: string
  recipient: string
  /** For a notice of an email change: the address asked for. */
  newEmail?: string
  /** The account's version when asked; unset for notices, which go out whatever happens next. */
  securityVersion?: number
  sessionId?: string
}

export function createMailOutboxRepository(prisma: PrismaClient, tokens: EmailTokensRepository, options: { resetTokenTtlMs: number }) {
  /** How long an email of this kind is worth delivering, and its link working. */
  const lifetime = (kind: MailKind) => (kind === 'password_reset' ? options.resetTokenTtlMs : VERIFICATION_TTL_MS)

  async function enqueueIn(tx: Transaction | PrismaClient, mails: NewMail[], now = new Date()) {
    await tx.mailOutbox.createMany({
      data: mails.map((mail) => ({
        kind: mail.kind,
        userId: mail.userId,
        recipient: mail.recipient,
        newEmail: mail.newEmail ?? null,
        securityVersion: mail.securityVersion ?? null,
        sessionId: mail.sessionId ?? null,
        nextAttemptAt: now,
        giveUpAt: new Date(now.getTime() + lifetime(mail.kind)),
        createdAt: now
      }))
    })
  }

  const drop = (reason: string): Prepared => ({ outcome: 'drop', reason })

  /** The job is done: sent, failed for good, or dropped (with why). */
  async function finish(id: string, status: 'sent' | 'failed' | 'dropped', note: string | null, now = new Date()) {
    await prisma.mailOutbox.updateMany({
      where: { id },
      data: { status, finishedAt: now, lockedUntil: null, ...(note === null ? {} : { lastError: note.slice(0, 500) }) }
    })
  }

  return {
    /** Queues emails about an account. */
    enqueue: (mails: NewMail[]) => enqueueIn(prisma, mails),

    /**
     * Queues a password reset for `email`. One INSERT, and nothing else: not
     * even whether an account has the email is looked at here, so the request
     * does the same work, writes the same row and commits the same way for
     * every email. The worker finds the account after the answer (and records
     * the request in the audit trail then); a row without one is deleted.
     */
    async enqueuePasswordReset(email: string, source: AuditSource) {
      const now = new Date()
      await prisma.mailOutbox.create({
        data: {
          kind: 'password_reset',
          recipient: normalizeEmail(email),
          requestIp: source.ip,
          requestUserAgent: source.userAgent,
          nextAttemptAt: now,
          giveUpAt: new Date(now.getTime() + lifetime('password_reset')),
          createdAt: now
        },
        select: { id: true }
      })
    },

    /**
     * Records an email change: the account gets `pendingEmail` (only if still
     * at `expectedVersion`, the version its password was checked at), the new
     * address a link and the old one a notice. False when the account changed.
     */
    async requestEmailChange(input: { userId: string; expectedVersion: number; newEmail: string; oldEmail: string; sessionId: string }) {
      const now = new Date()
      return prisma.$transaction(async (tx) => {
        const { count } = await tx.user.updateMany({
          where: { id: input.userId, securityVersion: input.expectedVersion },
          data: { pendingEmail: input.newEmail }
        })
        if (count === 0) return false
        await enqueueIn(
          tx,
          [
            { kind: 'email_change', userId: input.userId, recipient: input.newEmail, securityVersion: input.expectedVersion, sessionId: input.sessionId },
            { kind: 'email_change_notice', userId: input.userId, recipient: input.oldEmail, newEmail: input.newEmail }
          ],
          now
        )
        return true
      })
    },

    /** Cancels a pending email change (the account asked for its own email again). */
    async cancelEmailChange(userId: string) {
      await prisma.$transaction(async (tx) => {
        await tx.user.update({ where: { id: userId }, data: { pendingEmail: null }, select: { id: true } })
        await tx.emailToken.deleteMany({ where: { userId, kind: 'email_change' } })
      })
    },

    /** When the account may next be sent an email of `kind` (undefined: now): the per-minute rule, for requests that can be refused. */
    async nextAllowed(userId: string, kind: MailKind, now = new Date()): Promise<Date | undefined> {
      const last = await prisma.mailOutbox.findFirst({
        where: { userId, kind, status: { in: ['queued', 'sent'] }, createdAt: { gt: new Date(now.getTime() - MAIL_INTERVAL_MS) } },
        orderBy: { createdAt: 'desc' },
        select: { createdAt: true }
      })
      return last ? new Date(last.createdAt.getTime() + MAIL_INTERVAL_MS) : undefined
    },

    /**
     * Leases up to `limit` queued rows that are due, for `leaseMs`: rows leased
     * by another worker are skipped, not waited for.
     */
    async claim(limit: number, leaseMs: number, now = new Date()): Promise<OutboxJob[]> {
      const rows = await prisma.$queryRaw<JobRow[]>`
        UPDATE mail_outbox SET locked_until = ${new Date(now.getTime() + leaseMs)}::timestamptz, attempts = attempts + 1
        WHERE id IN (
          SELECT id FROM mail_outbox
          WHERE status = 'queued' AND next_attempt_at <= ${now}::timestamptz
            AND (locked_until IS NULL OR locked_until <= ${now}::timestamptz)
          ORDER BY next_attempt_at
          LIMIT ${limit}
          FOR UPDATE SKIP LOCKED
        )
        RETURNING id, kind, user_id, recipient, new_email, security_version, session_id, attempts, give_up_at, created_at, request_ip, request_user_agent`
      return rows.map(toJob)
    },

    /**
     * Decides, on the account as it is now, whether the job's email goes out,
     * and makes its link's token if so (replacing any earlier one of the kind).
     */
    async prepare(job: OutboxJob, now = new Date()): Promise<Prepared> {
      const decided = await prisma.$transaction(async (tx): Promise<Prepared> => {
        // The account row is locked against other writers of its tokens (NO KEY: inserts that
        // only reference it, like a new outbox row, do not wait for this transaction).
        const [account] = job.userId === null
          ? await tx.$queryRaw<AccountRow[]>`
              SELECT id, email, pending_email, is_active, security_version, email_verified_at
              FROM users WHERE email = ${job.recipient} FOR NO KEY UPDATE`
          : await tx.$queryRaw<AccountRow[]>`
              SELECT id, email, pending_email, is_active, security_version, email_verified_at
              FROM users WHERE id = ${job.userId}::uuid FOR NO KEY UPDATE`
        if (job.userId === null) {
          if (!account?.is_active) {
            // A reset asked for an email without an (active) account: nothing to send, nothing worth keeping.
            await tx.mailOutbox.deleteMany({ where: { id: job.id } })
            return drop('no active account has the email')
          }
          await tx.mailOutbox.update({ where: { id: job.id }, data: { userId: account.id }, select: { id: true } })
          await tx.auditEvent.create({
            data: { kind: 'password.reset_requested', userId: account.id, ip: job.requestIp, userAgent: job.requestUserAgent, createdAt: job.createdAt },
            select: { id: true }
          })
        }
        if (!account?.is_active) return drop('account inactive or gone')
        const userId = account.id
        if (job.securityVersion !== null && account.security_version !== job.securityVersion) return drop('account changed since the request')
        if (job.kind === 'password_reset' && account.email !== job.recipient) return drop('email changed since the request')
        if (job.kind === 'email_verification' && (account.email !== job.recipient || account.email_verified_at !== null)) {
          return drop('email verified or changed since the request')
        }
        if (job.kind === 'email_change' && account.pending_email !== job.recipient) return drop('email change replaced or cancelled')
        const others = await tx.mailOutbox.findMany({
          where: { userId, kind: job.kind, id: { not: job.id }, status: { in: ['queued', 'sent'] } },
          select: { createdAt: true, issuedAt: true }
        })
        if (others.some((other) => other.createdAt > job.createdAt)) return drop('a newer request replaces it')
        if (others.some((other) => other.issuedAt !== null && now.getTime() - other.issuedAt.getTime() < MAIL_INTERVAL_MS)) {
          return drop('one email of this kind per account and minute')
        }
        await tx.mailOutbox.update({ where: { id: job.id }, data: { issuedAt: now }, select: { id: true } })
        const tokenKind = TOKEN_KIND[job.kind]
        if (!tokenKind) return { outcome: 'send', to: job.recipient }
        const expiresAt = new Date(now.getTime() + lifetime(job.kind))
        const token = await tokens.issue(tx, {
          userId,
          kind: tokenKind,
          email: job.recipient,
          securityVersion: account.security_version,
          sessionId: job.sessionId,
          issuedAt: now,
          expiresAt
        })
        return { outcome: 'send', to: job.recipient, token, expiresAt }
      })
      if (decided.outcome === 'drop') await finish(job.id, 'dropped', decided.reason, now)
      return decided
    },

    finish,

    /** A temporary failure: tried again at `at`, by whichever worker is free then. */
    async retryAt(id: string, at: Date, error: string) {
      await prisma.mailOutbox.updateMany({ where: { id }, data: { nextAttemptAt: at, lockedUntil: null, lastError: error.slice(0, 500) } })
    },

    /** When the next queued row is due (undefined: none is queued). */
    async nextDue(): Promise<Date | undefined> {
      const next = await prisma.mailOutbox.findFirst({
        where: { status: 'queued' },
        orderBy: { nextAttemptAt: 'asc' },
        select: { nextAttemptAt: true, lockedUntil: true }
      })
      if (!next) return undefined
      return next.lockedUntil && next.lockedUntil > next.nextAttemptAt ? next.lockedUntil : next.nextAttemptAt
    },

    /** Emails waiting for delivery, on every instance. */
    async countQueued(): Promise<number> {
      return prisma.mailOutbox.count({ where: { status: 'queued' } })
    },

    /** Deletes rows finished before `before`. */
    async prune(before: Date): Promise<number> {
      const { count } = await prisma.mailOutbox.deleteMany({ where: { finishedAt: { lt: before } } })
      return count
    }
  }
}

export type MailOutboxRepository = ReturnType<typeof createMailOutboxRepository>
