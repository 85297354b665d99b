// Every list's page is a range of an index, however deep: on tables large
// enough for PostgreSQL to choose its plans honestly (100,000 posts and
// audit events, 20,000 users), the first page and a page 10,000 rows in are
// read from an index whose condition is the page's bound, and no row is
// read and thrown away (no "Rows Removed by Filter", no scan of more than
// the page). Both the plan of a single query and the generic plan a prepared
// statement settles on after a few runs (the service prepares its
// statements) are checked, since the two can differ.
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fill } from '../bench/million.js'
import type { Prisma } from '../src/generated/prisma/client.js'
import { auditEventsPageSql } from '../src/repositories/audit.js'
import { encodeCursor, idsPageSql } from '../src/repositories/cursor.js'
import { postsPageSql } from '../src/repositories/posts.js'
import { fileDatabase } from './helper.js'

const LIMIT = 40
const DEPTH = 10_000
const FIXTURE = { users: 20_000, posts: 100_000, heavyEvery: 5, events: 100_000 }

let sql: pg.Client
const heavy = randomUUID()

beforeAll(async () => {
  const { url } = await fileDatabase()
  sql = new pg.Client({ connectionString: url })
  await sql.connect()
  await sql.query(
    `INSERT INTO users (id, email, full_name, password_hash, updated_at) VALUES ($1, 'heavy@example.com', 'Heavy Writer', 'not a hash', now())`,
    [heavy]
  )
  await fill(url, heavy, FIXTURE)
}, 120_000)

afterAll(async () => {
  await sql?.end()
})

/** The cursor of the page that starts DEPTH rows into the rows `keys` lists in order. */
async function deepCursor(keys: string, params: unknown[] = []): Promise<string> {
  const { rows } = await sql.query<{ created_at: Date; id: string }>(`${keys} OFFSET ${DEPTH - 1} LIMIT 1`, params)
  const key = rows[0]
  if (!key) throw new Error('the fixture is too small')
  return encodeCursor({ createdAt: key.created_at, id: key.id })
}

interface PlanNode {
  'Node Type': string
  'Relation Name'?: string
  'Index Name'?: string
  'Index Cond'?: string
  'Actual Rows': number
  'Actual Loops': number
  'Rows Removed by Filter'?: number
  Plans?: PlanNode[]
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)]
}

/** The plan PostgreSQL runs for the query: alone (custom), or as a prepared statement's generic plan. */
async function plan(query: Prisma.Sql, generic: boolean): Promise<PlanNode> {
  const text = query.text
  await sql.query(`SET plan_cache_mode = ${generic ? 'force_generic_plan' : 'force_custom_plan'}`)
  await sql.query('DEALLOCATE ALL')
  await sql.query(`PREPARE page AS ${text}`)
  const literals = query.values.map((value) => sql.escapeLiteral(value instanceof Date ? value.toISOString() : String(value)))
  const { rows } = await sql.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
    `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE page${literals.length > 0 ? `(${literals.join(', ')})` : ''}`
  )
  const explained = rows[0]?.['QUERY PLAN'][0].Plan
  if (!explained) throw new Error('no plan')
  return explained
}

/** Asserts that the query reads its page from an index and nothing more, in both kinds of plan. */
async function expectIndexRange(query: Prisma.Sql, table: string, deep: boolean) {
  for (const generic of [false, true]) {
    const all = nodes(await plan(query, generic))
    const described = JSON.stringify(all.map((node) => [node['Node Type'], node['Index Name'], node['Index Cond'], node['Actual Rows']]))
    const scans = all.filter((node) => node['Relation Name'] === table)
    expect(scans.length, described).toBeGreaterThan(0)
    for (const scan of scans) {
      expect(scan['Node Type'], described).toMatch(/^Index (Only )?Scan$/)
      // The page (and the row that tells whether another follows), nothing before it.
      expect(scan['Actual Rows'] * scan['Actual Loops'], described).toBeLessThanOrEqual(LIMIT + 1)
      if (deep) expect(scan['Index Cond'], described).toMatch(/ROW\(/)
    }
    for (const node of all) expect(node['Rows Removed by Filter'] ?? 0, described).toBe(0)
  }
}

const postKeys = 'SELECT created_at, id FROM posts ORDER BY created_at DESC, id DESC'
const eventKeys = 'SELECT created_at, id FROM audit_events'

describe('the page of a list, on a large table, is a range of an index', () => {
  it('posts, newest first', async () => {
    await expectIndexRange(postsPageSql({ limit: LIMIT }), 'posts', false)
    await expectIndexRange(postsPageSql({ limit: LIMIT, cursor: await deepCursor(postKeys) }), 'posts', true)
  })

  it("one author's posts (a fifth of them)", async () => {
    const cursor = await deepCursor('SELECT created_at, id FROM posts WHERE author_id = $1 ORDER BY created_at DESC, id DESC', [heavy])
    await expectIndexRange(postsPageSql({ limit: LIMIT, authorId: heavy }), 'posts', false)
    await expectIndexRange(postsPageSql({ limit: LIMIT, authorId: heavy, cursor }), 'posts', true)
  })

  it('users, oldest first', async () => {
    const cursor = await deepCursor('SELECT created_at, id FROM users ORDER BY created_at, id')
    await expectIndexRange(idsPageSql('users', { limit: LIMIT }, 'asc'), 'users', false)
    await expectIndexRange(idsPageSql('users', { limit: LIMIT, cursor }, 'asc'), 'users', true)
  })

  it('audit events, all and of one kind (an eighth of them)', async () => {
    const all = await deepCursor(`${eventKeys} ORDER BY created_at DESC, id DESC`)
    await expectIndexRange(auditEventsPageSql({ limit: LIMIT }), 'audit_events', false)
    await expectIndexRange(auditEventsPageSql({ limit: LIMIT, cursor: all }), 'audit_events', true)
    const ofKind = await deepCursor(`${eventKeys} WHERE kind = 'login.failure' ORDER BY created_at DESC, id DESC`)
    await expectIndexRange(auditEventsPageSql({ limit: LIMIT, kind: 'login.failure' }), 'audit_events', false)
    await expectIndexRange(auditEventsPageSql({ limit: LIMIT, kind: 'login.failure', cursor: ofKind }), 'audit_events', true)
  })

  it('audit events by or about one account (a fifth of them)', async () => {
    const cursor = await deepCursor(`${eventKeys} WHERE user_id = $1 OR target_user_id = $1 ORDER BY created_at DESC, id DESC`, [heavy])
    await expectIndexRange(auditEventsPageSql({ limit: LIMIT, user_id: heavy }), 'audit_events', false)
    await expectIndexRange(auditEventsPageSql({ limit: LIMIT, user_id: heavy, cursor }), 'audit_events', true)
  })
})
