// Keyset pagination cursors: an opaque base64url of (created_at, id), the
// sort key of every list. A cursor that does not decode to a key this service
// could have written is a 400: a forged one must not reach the database with
// a date PostgreSQL cannot store (year 0, year -271821) or an id in another
// spelling, where it would fail as a 500.
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

/** Rows strictly after the cursor in (created_at, id) order, newest or oldest first. */
export function afterCursor(key: CursorKey | undefined, direction: 'desc' | 'asc') {
  if (!key) return {}
  const beyond = direction === 'desc' ? 'lt' : 'gt'
  return {
    OR: [{ createdAt: { [beyond]: key.createdAt } }, { createdAt: key.createdAt, id: { [beyond]: key.id } }]
  }
}

/**
 * The `findMany` arguments of one page in (created_at, id) order: rows after
 * the cursor, one more than the page holds, to tell whether another follows.
 */
export function pageQuery(query: { limit: number; cursor?: string }, direction: 'desc' | 'asc') {
  return {
    where: afterCursor(decodeCursor(query.cursor), direction),
    orderBy: [{ createdAt: direction }, { id: direction }],
    take: query.limit + 1
  }
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
