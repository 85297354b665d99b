// Keyset pagination: cursors are an opaque base64url of (created_at, id), the
// sort key of every list, and a page is the rows after its cursor in that
// order. A cursor that does not decode is a 400.
import { Prisma, type PrismaClient } from '../generated/prisma/client.js'
import { badRequest } from '../lib/errors.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export interface CursorKey {
  createdAt: Date
  id: string
}

export function encodeCursor(key: CursorKey): string {
  return Buffer.from(`${key.createdAt.toISOString()}|${key.id}`).toString('base64url')
}

export function decodeCursor(cursor: string | undefined): CursorKey | undefined {
  if (cursor === undefined) return undefined
  const [time, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|')
  const createdAt = new Date(time ?? '')
  if (!id || !UUID.test(id) || Number.isNaN(createdAt.getTime())) {
    throw badRequest('The request is not valid.', [{ field: 'cursor', message: 'is not a cursor this service issued' }])
  }
  return { createdAt, id }
}

/** The table alias of a query (a constant of the repository, never input), or none. */
type Alias = 'p' | 'e' | 'u' | 'c' | ''

const qualified = (alias: Alias, column: 'created_at' | 'id') => (alias ? `${alias}.${column}` : column)

/**
 * Rows strictly after the cursor in (created_at, id) order, newest or oldest
 * first, as one row comparison. PostgreSQL takes it as the start of an index
 * scan on (created_at, id), so a page 2,000 deep reads as few rows as the
 * first. The same condition spelled `created_at < $1 OR (created_at = $1
 * AND id < $2)` is a filter: the scan reads every row before the cursor and
 * throws them away (at a million posts, page 2,000 took four times page 1).
 */
export function afterKey(key: CursorKey | undefined, direction: 'desc' | 'asc', alias: Alias = ''): Prisma.Sql {
  if (!key) return Prisma.sql`TRUE`
  const beyond = Prisma.raw(direction === 'desc' ? '<' : '>')
  const columns = Prisma.raw(`(${qualified(alias, 'created_at')}, ${qualified(alias, 'id')})`)
  return Prisma.sql`${columns} ${beyond} (${key.createdAt}::timestamptz, ${key.id}::uuid)`
}

/** The ORDER BY of a page, matching afterKey and the (created_at, id) indexes. */
export function keyOrder(direction: 'desc' | 'asc', alias: Alias = ''): Prisma.Sql {
  const order = direction === 'desc' ? ' DESC' : ''
  return Prisma.raw(`${qualified(alias, 'created_at')}${order}, ${qualified(alias, 'id')}${order}`)
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
  const rows = await prisma.$queryRaw<{ id: string }[]>`
    SELECT id FROM ${Prisma.raw(table)}
    WHERE ${afterKey(decodeCursor(query.cursor), direction)}
    ORDER BY ${keyOrder(direction)} LIMIT ${query.limit + 1}`
  return rows.map((row) => row.id)
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
