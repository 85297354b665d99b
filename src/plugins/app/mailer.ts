// Email delivery: the worker that drains the outbox (repositories/mail-outbox.ts)
// through SMTP (nodemailer, MAIL_URL), or in development mode into .eml files
// under .data/mail/ with the link logged, so `npm start` needs no mail server.
//
// Requests only write rows and call `mail.queued()`; delivery starts after the
// answer is sent, so a slow or dead mail server never delays an answer or
// shows in its timing. The worker leases a few due rows at a time, decides on
// each (a link's token is made then), renders it, and sends it:
// - accepted: the row is `sent`;
// - a temporary failure (connection refused or lost, a timeout, a 4xx reply):
//   tried again after MAIL_RETRY_DELAY, doubling up to 15 minutes, for as long
//   as the email is of use (its link's lifetime), then failed;
// - a permanent failure (a 5xx reply, a refused address or login): `failed`
//   at once, logged at error level with the server's reply.
// Every outcome is counted (`mail.deliveries`) and stays in the table a week.
// The rows outlive the process: at shutdown the worker stops taking rows, and
// what is still queued is delivered by the next instance that runs, or by any
// other running instance (each looks for due rows every 15 seconds).
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { FastifyBaseLogger } from 'fastify'
import fp from 'fastify-plugin'
import nodemailer from 'nodemailer'
import { createMailTemplates, inWords, type MailContent } from '../../lib/mail-templates.js'
import type { MailKind, MailOutboxRepository, OutboxJob } from '../../repositories/mail-outbox.js'

/** What happened to the emails of this instance since it started. */
export interface MailDeliveries {
  /** Emails queued by this instance's requests (a reset asked for an email without an account too: the worker drops it). */
  queued: number
  /** Emails the mail server accepted (development mode: written to a file). */
  sent: number
  /** Temporary failures that were scheduled for another try. */
  retried: number
  /** Emails given up on: a permanent failure, or temporary ones until the email was of no use. */
  failed: number
  /** Emails not sent because of what happened since the request (see mail-outbox.ts `prepare`). */
  dropped: number
}

export interface Mail {
  /** Whether the service sends email at all (MAIL_DISABLED turns it off). */
  readonly enabled: boolean
  /** This instance's delivery counts, for monitoring. */
  readonly deliveries: Readonly<MailDeliveries>
  /** Emails waiting in the outbox now, queued by any instance. */
  waiting(): Promise<number>
  /** `count` emails were just queued: delivery starts once the current answer is on its way. */
  queued(count?: number): void
  /** Delivers everything that is due now, and resolves when nothing due is left. */
  drain(): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    mail: Mail
  }
}

/** Rows leased at a time, and so emails in delivery at once. */
const BATCH = 4
/** How often every instance looks for due rows it was not told about (other instances', a restart's). */
const POLL_MS = 15_000
const MAX_RETRY_DELAY_MS = 15 * 60_000

/** One email, ready to go. */
interface Outgoing {
  kind: MailKind
  to: string
  content: MailContent
  link?: string
}

interface Transport {
  send(mail: Outgoing, signal: AbortSignal): Promise<void>
  close(): void
}

/** MAIL_FROM as written, or the product's name at a local address (development mode). */
type Sender = string | { name: string; address: string }

/** A failure of the message itself or of the server's configuration: trying again cannot help. */
class PermanentFailure extends Error {}

// Nodemailer's codes for failures that another try cannot fix (without an SMTP reply to go by).
const PERMANENT_CODES = new Set(['EENVELOPE', 'EAUTH', 'ENOAUTH', 'ECONFIG', 'EREQUIRETLS'])

/**
 * RFC 5321: a 5yz reply is permanent, a 4yz transient (and 503, "bad
 * sequence", says the session was confused, not that the message is refused).
 * No reply at all (refused, reset, timed out): transient.
 */
export function isPermanent(error: unknown): boolean {
  if (error instanceof PermanentFailure) return true
  const { responseCode, code } = error as { responseCode?: unknown; code?: unknown }
  if (typeof responseCode === 'number') return responseCode >= 500 && responseCode < 600 && responseCode !== 503
  return typeof code === 'string' && PERMANENT_CODES.has(code)
}

/** A failure as the outbox and the log keep it: the server's reply or the error, without the message. */
function describe(error: unknown): string {
  const { code, responseCode, response, message } = error as { code?: unknown; responseCode?: unknown; response?: unknown; message?: unknown }
  const reply = typeof response === 'string' ? response : typeof message === 'string' ? message : String(error)
  return [typeof code === 'string' ? code : '', typeof responseCode === 'number' ? String(responseCode) : '', reply.slice(0, 300)]
    .filter(Boolean)
    .join(' ')
}

function smtpTransport(url: string, from: Sender, timeoutMs: number): Transport {
  const transporter = nodemailer.createTransport({
    url,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    dnsTimeout: timeoutMs,
    // The library's own log would print envelopes and, at debug, message bodies with their links.
    logger: false,
    debug: false
  })
  return {
    async send(mail, signal) {
      await transporter.sendMail({ from, to: mail.to, ...mail.content, signal })
    },
    close: () => transporter.close()
  }
}

/** Development mode: each email becomes an .eml file (any mail program opens it), and its link a log line. */
function fileTransport(dir: string, from: Sender, log: FastifyBaseLogger): Transport {
  const writer = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' })
  let written = 0
  return {
    async send(mail) {
      const info = await writer.sendMail({ from, to: mail.to, ...mail.content })
      await mkdir(dir, { recursive: true })
      const stamp = new Date().toISOString().replace(/[:.]/g, '-')
      const file = path.join(dir, `${stamp}-${String(++written).padStart(3, '0')}-${mail.kind}.eml`)
      await writeFile(file, info.message as Buffer)
      // Development mode only: the one log line with a link in it, so no mail program is needed.
      log.info({ file: path.relative(process.cwd(), file), to: mail.to, link: mail.link }, `email written (development mode, not sent): ${mail.content.subject}`)
    },
    close() {}
  }
}

export default fp<{ developmentDir?: string }>(
  async function mailerPlugin(fastify, options) {
    const { config, log } = fastify
    const deliveries: MailDeliveries = { queued: 0, sent: 0, retried: 0, failed: 0, dropped: 0 }
    const counted = fastify.metrics.counter({
      name: 'blog_api_mail_deliveries_total',
      help: 'Emails by what happened to them on this instance: queued, sent, retried (a temporary failure), failed (given up), dropped (no longer wanted).',
      labelNames: ['outcome']
    })
    const count = (outcome: keyof MailDeliveries, by = 1) => {
      deliveries[outcome] += by
      counted.inc({ outcome }, by)
    }

    if (config.MAIL_DISABLED) {
      fastify.decorate('mail', {
        enabled: false,
        deliveries,
        waiting: async () => 0,
        queued() {
          throw new Error('email is turned off (MAIL_DISABLED)')
        },
        drain: async () => undefined
      } satisfies Mail)
      return
    }

    const from = config.MAIL_FROM ?? { name: config.PRODUCT_NAME, address: 'no-reply@localhost' }
    let transport: Transport
    if (config.MAIL_URL) transport = smtpTransport(config.MAIL_URL, from, config.MAIL_TIMEOUT * 1000)
    else if (options.developmentDir) transport = fileTransport(path.join(options.developmentDir, 'mail'), from, log)
    else throw new Error('MAIL_URL is required outside development mode, or MAIL_DISABLED=true')

    const outbox: MailOutboxRepository = fastify.mailOutboxRepository
    const templates = createMailTemplates()
    const publicUrl = config.PUBLIC_URL.replace(/\/+$/, '')
    const linkFor = (kind: MailKind, token: string) => {
      const custom = kind === 'password_reset' ? config.RESET_PASSWORD_URL : config.VERIFY_EMAIL_URL
      if (custom) return custom.replaceAll('{token}', encodeURIComponent(token))
      const page = kind === 'password_reset' ? 'reset-password' : 'verify-email'
      return `${publicUrl}/account/${page}?token=${encodeURIComponent(token)}`
    }
    // A lease outlives the longest delivery (connection, greeting, then each command
    // within MAIL_TIMEOUT): another instance takes a row over only when its worker is gone.
    const sendTimeoutMs = config.MAIL_TIMEOUT * 4000
    const leaseMs = sendTimeoutMs + 60_000
    const retryDelay = (attempts: number) => Math.min(config.MAIL_RETRY_DELAY * 1000 * 2 ** Math.max(attempts - 1, 0), MAX_RETRY_DELAY_MS)

    let closed = false
    let timer: NodeJS.Timeout | undefined
    let running: Promise<void> | undefined
    let again = false
    // Aborted at shutdown: deliveries in flight go back to the queue.
    const stopping = new AbortController()

    async function deliver(job: OutboxJob) {
      const now = new Date()
      let content: MailContent
      let link: string | undefined
      try {
        const prepared = await outbox.prepare(job, now)
        if (prepared.outcome === 'drop') {
          count('dropped')
          log.info({ mail: job.id, kind: job.kind, reason: prepared.reason }, 'email not sent')
          return
        }
        link = prepared.token === undefined ? undefined : linkFor(job.kind, prepared.token)
        try {
          content = templates.render(job.kind, {
            productName: config.PRODUCT_NAME,
            email: prepared.to,
            link,
            validFor: prepared.expiresAt ? inWords(prepared.expiresAt.getTime() - now.getTime()) : undefined,
            newEmail: job.newEmail ?? undefined
          })
        } catch (error) {
          throw new PermanentFailure(`the email could not be rendered: ${(error as Error).message}`)
        }
        const signal = AbortSignal.any([stopping.signal, AbortSignal.timeout(sendTimeoutMs)])
        await transport.send({ kind: job.kind, to: prepared.to, content, link }, signal)
        await outbox.finish(job.id, 'sent', null)
        count('sent')
        log.info({ mail: job.id, kind: job.kind, attempt: job.attempts }, 'email delivered')
      } catch (error) {
        await failed(job, error, now)
      }
    }

    async function failed(job: OutboxJob, error: unknown, now: Date) {
      const reason = describe(error)
      const retryAt = new Date(now.getTime() + retryDelay(job.attempts))
      try {
        if (stopping.signal.aborted && now < job.giveUpAt) {
          // Shutting down: not a failure of the email; the next worker takes it at once.
          await outbox.retryAt(job.id, now, 'interrupted by a shutdown')
          return
        }
        if (!isPermanent(error) && retryAt < job.giveUpAt) {
          await outbox.retryAt(job.id, retryAt, reason)
          count('retried')
          log.warn({ mail: job.id, kind: job.kind, attempt: job.attempts, retry_at: retryAt.toISOString(), reason }, 'email delivery failed; trying again later')
          return
        }
        await outbox.finish(job.id, 'failed', reason)
        count('failed')
        log.error({ mail: job.id, kind: job.kind, attempt: job.attempts, reason }, 'email delivery failed for good')
      } catch (recordError) {
        // The row stays leased; when the lease ends, a worker tries it again.
        log.error({ mail: job.id, kind: job.kind, err: recordError, reason }, 'could not record an email delivery failure')
      }
    }

    /** Leases and delivers due rows until none is left. */
    async function work() {
      do {
        again = false
        while (!closed) {
          const jobs = await outbox.claim(BATCH, leaseMs)
          if (jobs.length === 0) break
          await Promise.all(jobs.map(deliver))
        }
      } while (again && !closed)
    }

    function run(): Promise<void> {
      if (running) {
        again = true
        return running
      }
      clearTimeout(timer)
      running = work()
        .catch((error: unknown) => log.warn({ err: error }, 'the mail worker could not read the outbox'))
        .finally(() => {
          running = undefined
          // Rows queued while the last batch was finishing: deliver them now, not at the next poll.
          if (again && !closed) void run()
          else void schedule()
        })
      return running
    }

    /** Wakes the worker when the next known row is due, or after POLL_MS at the latest. */
    async function schedule() {
      if (closed) return
      const next = await outbox.nextDue().catch(() => undefined)
      if (closed) return
      const wait = next ? Math.min(Math.max(next.getTime() - Date.now(), 0), POLL_MS) : POLL_MS
      clearTimeout(timer)
      timer = setTimeout(() => void run(), wait)
      timer.unref()
    }

    fastify.metrics.gauge({
      name: 'blog_api_mail_queue',
      help: 'Emails waiting in the outbox, queued by any instance (one count query per scrape).',
      async collect() {
        this.set(await outbox.countQueued().catch(() => Number.NaN))
      }
    })
    fastify.decorate('mail', {
      enabled: true,
      deliveries,
      waiting: () => outbox.countQueued(),
      queued(emails = 1) {
        count('queued', emails)
        // After the current answer: setImmediate runs once the reply has been written.
        if (!closed) setImmediate(() => void run())
      },
      async drain() {
        await run()
        while (running) await running
      }
    } satisfies Mail)

    fastify.addHook('onReady', async () => {
      // Rows left by an earlier run or another instance: looked for after the first poll interval,
      // so a short-lived process (a command-line tool) does not start delivering others' mail.
      timer = setTimeout(() => void run(), POLL_MS)
      timer.unref()
    })
    fastify.addHook('onClose', async () => {
      closed = true
      clearTimeout(timer)
      stopping.abort()
      await running
      transport.close()
    })
  },
  { name: 'mailer', dependencies: ['config', 'metrics', 'repositories'] }
)
