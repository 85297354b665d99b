// Keyset pagination: cursors are an opaque base64url of (created_at, id), the
// sort key of every list, and a page is the rows after its cursor in that
// order. A cursor that does not decode to a key this service could have
// written is a 400: a forged one must not reach the database with a date
// PostgreSQL cannot store (year 0, year -271821) or an id in another
// spelling, where it would fail as a 500.
import { Prisma, type PrismaClient } from '../generated/prisma/client.js'
import { badRequest } from '../lib/errors.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
/** An ISO 8601 UTC timestamp as `Date.toISOString()` writes it, for years 1970 to 9999. */
const TIMESTAMP = /^(19[7-9]\d|[2-9]\d{3})-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

export interface CursorKey {
  createdAt: Date
  id: string
}

export function encodeCursor(key: CursorKey): string {
  return Buffer.from(`${key.createdAt.toISOString()}|${key.id}`).toString('base64url')
}

export function decodeCursor(cursor: string | undefined): CursorKey | undefined {
  if (cursor === undefined) return undefined
  const [time = '', id, ...rest] = Buffer.from(cursor, 'base64url').toString('utf8').split('|')
  const createdAt = new Date(time)
  // The round trip through Date also refuses dates the pattern lets by, such as February 30th.
  const wellFormed = TIMESTAMP.test(time) && !Number.isNaN(createdAt.getTime()) && createdAt.toISOString() === time
  if (!wellFormed || rest.length > 0 || id === undefined || !UUID.test(id)) {
    throw badRequest('The request is not valid.', [{ field: 'cursor', message: 'is not a cursor this service issued' }])
  }
  return { createdAt, id }
}

/** A list's page: the condition on its rows and their order, for a query's WHERE and ORDER BY. */
export interface Keyset {
  where: Prisma.Sql
  orderBy: Prisma.Sql
}

/** One value of a column that leads an index (column, created_at, id): the list of a post's author, say. */
export interface Within {
  /** The column, as the query names it (a constant of the repository, never input). */
  column: string
  /** Its value, cast to the column's type. */
  value: Prisma.Sql
}

/**
 * The rows after the cursor in (created_at, id) order, newest or oldest
 * first, as one row comparison: PostgreSQL takes it as the start of a scan
 * of the (created_at, id) index, so a page 2,000 deep reads as few rows as
 * the first. Spelled `created_at < $1 OR (created_at = $1 AND id < $2)` the
 * same condition is a filter: the scan reads every row before the cursor and
 * throws them away (at a million posts, page 2,000 took four times page 1).
 *
 * A list `within` one value of a column (a post's author, an event's kind)
 * is a range of the index (column, created_at, id), and is written as one:
 * `(column, created_at, id) < (value, $created_at, $id) AND column >= value`,
 * ordered by the three columns, the first page starting after the end of
 * time. Written as `column = value AND (created_at, id) < (...)`, PostgreSQL
 * may prefer the (created_at, id) index and filter by the column: a few rows
 * thrown away per page for a common value, the whole table for a rare one
 * once a prepared statement's plan is fixed.
 *
 * `alias` qualifies the columns (a table alias of the query, never input).
 */
export function keyset(key: CursorKey | undefined, direction: 'desc' | 'asc', options: { alias?: string; within?: Within } = {}): Keyset {
  const column = (name: string) => (options.alias ? `${options.alias}.${name}` : name)
  const [before, bound, order] = direction === 'desc' ? ['<', '>=', ' DESC'] : ['>', '<=', '']
  const within = options.within
  if (!within) {
    return {
      where: key
        ? Prisma.sql`(${Prisma.raw(`${column('created_at')}, ${column('id')}`)}) ${Prisma.raw(before)} (${key.createdAt}::timestamptz, ${key.id}::uuid)`
        : Prisma.sql`TRUE`,
      orderBy: Prisma.raw(`${column('created_at')}${order}, ${column('id')}${order}`)
    }
  }
  const leading = column(within.column)
  // Before the first page: after every time there is (or before, oldest first).
  const time = key ? Prisma.sql`${key.createdAt}::timestamptz` : Prisma.raw(direction === 'desc' ? `'infinity'::timestamptz` : `'-infinity'::timestamptz`)
  const id = key ? Prisma.sql`${key.id}::uuid` : Prisma.raw(`'00000000-0000-0000-0000-000000000000'::uuid`)
  return {
    where: Prisma.sql`(${Prisma.raw(`${leading}, ${column('created_at')}, ${column('id')}`)}) ${Prisma.raw(before)} (${within.value}, ${time}, ${id})
      AND ${Prisma.raw(leading)} ${Prisma.raw(bound)} ${within.value}`,
    orderBy: Prisma.raw(`${leading}${order}, ${column('created_at')}${order}, ${column('id')}${order}`)
  }
}

/**
 * The ids of one page of a table, one more than the page holds, read from its
 * (created_at, id) index alone; the repository then reads those rows with
 * its usual select. For lists whose rows are shaped by a Prisma select.
 */
export async function pageIds(
  prisma: PrismaClient,
  table: 'users' | 'clients',
  query: { limit: number; cursor?: string },
  direction: 'desc' | 'asc'
): Promise<string[]> {
  const rows = await prisma.$queryRaw<{ id: string }[]>(idsPageSql(table, query, direction))
  return rows.map((row) => row.id)
}

/** The query of pageIds. */
export function idsPageSql(table: 'users' | 'clients', query: { limit: number; cursor?: string }, direction: 'desc' | 'asc') {
  const page = keyset(decodeCursor(query.cursor), direction)
  return Prisma.sql`SELECT id FROM ${Prisma.raw(table)} WHERE ${page.where} ORDER BY ${page.orderBy} LIMIT ${query.limit + 1}`
}

/** Splits `limit + 1` fetched rows into a page and the cursor of the next one. */
export function toPage<Row extends CursorKey, Item>(rows: Row[], limit: number, map: (row: Row) => Item) {
  const page = rows.slice(0, limit)
  const last = page.at(-1)
  return {
    data: page.map(map),
    next_cursor: rows.length > limit && last ? encodeCursor(last) : null
  }
}
