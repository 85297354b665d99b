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
//
// Events are written in batches, off the request's path: `record` queues the
// event (with the time it happened) and returns, and one INSERT writes
// whatever has queued while the previous one ran. At a few events a second
// each is written at once; under a flood of client-credentials grants or
// failed logins, hundreds share one statement. What is still queued is
// written when the app closes; a process killed outright loses at most the
// events of the statement in flight and those queued behind it (milliseconds).
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { Prisma, type PrismaClient } from '../generated/prisma/client.js'
import { isDatabaseUnavailable } from '../lib/database-errors.js'
import type { Principal } from '../plugins/infra/jwt.js'
import type { AuditEventsQuery, AuditKind } from '../schemas/audit.js'
import { decodeCursor, keyset, type Within, toPage } from './cursor.js'

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
/** Rows per INSERT. */
const BATCH = 500
/** Events queued at most while the database is slow or away; beyond, new ones are dropped (and counted in the log). */
const MAX_QUEUED = 50_000

interface QueuedEvent {
  id: string
  kind: AuditKind
  userId: string | null
  clientId: string | null
  sessionId: string | null
  targetUserId: string | null
  ip: string
  userAgent: string | null
  details: string | null
  createdAt: Date
}

/**
 * One page of events, newest first, with one more event than the page holds.
 * Each filter is the leading column of an index whose range after the cursor
 * is the page (see `keyset`); `user_id` is two such ranges (by the account,
 * about it), merged. Both filters at once read the account's ranges and keep
 * the events of the kind.
 */
export function auditEventsPageSql(query: AuditEventsQuery): Prisma.Sql {
  const key = decodeCursor(query.cursor)
  const take = query.limit + 1
  const page = (within?: Within, kind?: string) => {
    const range = keyset(key, 'desc', { within })
    const ofKind = kind === undefined ? Prisma.empty : Prisma.sql`AND kind = ${kind}`
    return Prisma.sql`SELECT ${AUDIT_COLUMNS} FROM audit_events WHERE ${range.where} ${ofKind} ORDER BY ${range.orderBy} LIMIT ${take}`
  }
  if (query.user_id) {
    // By the account, and about it: two ranges, merged (an event can be both).
    const account = Prisma.sql`${query.user_id}::uuid`
    return Prisma.sql`
      SELECT * FROM ((${page({ column: 'user_id', value: account }, query.kind)})
        UNION (${page({ column: 'target_user_id', value: account }, query.kind)})) AS events
      ORDER BY ${keyset(undefined, 'desc').orderBy} LIMIT ${take}`
  }
  if (query.kind) return page({ column: 'kind', value: Prisma.sql`${query.kind}::varchar` })
  return page()
}

/** Why events were not written: the queue was full, or the database refused or could not be reached. */
export type AuditLossReason = 'queue_full' | 'write_failed'

export function createAuditLog(prisma: PrismaClient, log: FastifyBaseLogger, onLost: (reason: AuditLossReason, events: number) => void = () => {}) {
  const queue: QueuedEvent[] = []
  let queued = 0
  let settled = 0
  let dropped = 0
  let writing: Promise<void> | undefined
  const waiters: { upTo: number; resolve: () => void }[] = []

  async function insert(events: QueuedEvent[]) {
    const column = <T>(pick: (event: QueuedEvent) => T) => events.map(pick)
    await prisma.$executeRaw`
      INSERT INTO audit_events (id, kind, user_id, client_id, session_id, target_user_id, ip, user_agent, details, created_at)
      SELECT * FROM unnest(
        ${column((e) => e.id)}::uuid[], ${column((e) => e.kind)}::varchar[], ${column((e) => e.userId)}::uuid[],
        ${column((e) => e.clientId)}::uuid[], ${column((e) => e.sessionId)}::uuid[], ${column((e) => e.targetUserId)}::uuid[],
        ${column((e) => e.ip)}::varchar[], ${column((e) => e.userAgent)}::varchar[], ${column((e) => e.details)}::jsonb[],
        ${column((e) => e.createdAt)}::timestamptz[])`
  }

  async function write(events: QueuedEvent[]) {
    try {
      await insert(events)
    } catch (error) {
      if (events.length === 1 || isDatabaseUnavailable(error)) {
        log.error({ err: error, kinds: [...new Set(events.map((event) => event.kind))], events: events.length }, 'could not record audit events')
        onLost('write_failed', events.length)
        return
      }
      // One event the database refuses (a value it cannot store) must not take the others with it.
      for (const event of events) await write([event])
    }
  }

  async function drain() {
    try {
      while (queue.length > 0) {
        const events = queue.splice(0, BATCH)
        await write(events)
        settled += events.length
        for (const waiter of waiters.filter((w) => w.upTo <= settled)) {
          waiters.splice(waiters.indexOf(waiter), 1)
          waiter.resolve()
        }
      }
    } finally {
      writing = undefined
    }
  }

  /** Resolves once every event recorded before the call is written (or given up on). */
  function flush(): Promise<void> {
    if (settled >= queued) return Promise.resolve()
    return new Promise((resolve) => waiters.push({ upTo: queued, resolve }))
  }

  return {
    /** Queues the event; it is written within milliseconds, with the time of this call. */
    async record(kind: AuditKind, request: FastifyRequest, entry: AuditEntry = {}): Promise<void> {
      if (queue.length >= MAX_QUEUED) {
        if (dropped++ % 1000 === 0) log.error({ kind, dropped }, 'audit events are being dropped: the database does not keep up')
        onLost('queue_full', 1)
        return
      }
      const target = entry.details?.target_user_id
      const source = auditSource(request)
      queue.push({
        id: randomUUID(),
        kind,
        userId: entry.userId ?? null,
        clientId: entry.clientId ?? null,
        sessionId: entry.sessionId ?? null,
        targetUserId: typeof target === 'string' && UUID.test(target) ? target : null,
        ip: source.ip,
        userAgent: source.userAgent,
        details: entry.details === undefined ? null : JSON.stringify(entry.details),
        createdAt: new Date()
      })
      queued++
      writing ??= drain()
    },

    flush,

    /** Events recorded and not yet written. */
    waiting(): number {
      return queued - settled
    },

    /** Newest first; `user_id` matches events by the account and administrative actions on it. */
    async list(query: AuditEventsQuery) {
      // This instance's own events are readable as soon as it has answered.
      await flush()
      const records = await prisma.$queryRaw<AuditRecord[]>(auditEventsPageSql(query))
      return toPage(records.map((record) => ({ ...record, createdAt: record.created_at })), query.limit, toAuditEventDto)
    }
  }
}

export type AuditLog = ReturnType<typeof createAuditLog>
