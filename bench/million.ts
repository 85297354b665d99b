// The benchmark's large database: 100,000 users, 1,000,000 posts (100,000 of
// them by one author) and 1,000,000 audit events (100,000 by that author),
// written with set-based SQL, and the same shapes at a few dozen rows for
// comparison. Also the deep cursors: the key of the row at which page 2,000
// of a list starts, encoded as the service encodes its cursors.
import pg from 'pg'

export interface Fill {
  users: number
  posts: number
  /** Every n-th post and audit event belongs to the heavy author. */
  heavyEvery: number
  events: number
}

export const MILLION: Fill = { users: 100_000, posts: 1_000_000, heavyEvery: 10, events: 1_000_000 }
/** A few dozen rows in every list the benchmark reads: a full first page of 20 in each. */
export const DOZENS: Fill = { users: 40, posts: 60, heavyEvery: 2, events: 200 }

/** Kinds the filler writes, in turn; the benchmark filters by the first. */
export const FILLED_KINDS = ['login.failure', 'login.success', 'token.refresh', 'client.token', 'session.logout', 'user.signup', 'session.revoked', 'user.updated']

const CONTENT = 'A post of the kind a blog serves, long enough to look like one. '.repeat(3)

/**
 * Writes the rows into a migrated database whose only user so far is
 * `heavyUserId` (the author with many posts, who is also the admin reading
 * the lists). Timestamps go forward from fixed dates with pairs of equal
 * ones, so pages break between rows of the same `created_at`, as they do
 * when several writes land in one millisecond.
 *
 * A bulk load as pg_restore does it: the secondary indexes of the tables
 * are dropped and built again afterwards from their own definitions (one
 * sorted build costs a fraction of a million inserts into each), the
 * foreign key triggers do not check each row (as a superuser, with
 * `session_replication_role = replica`; the rows are consistent by
 * construction), and posts and audit events load on two connections at once.
 */
export async function fill(url: string, heavyUserId: string, size: Fill): Promise<{ seconds: number }> {
  const started = performance.now()
  const connect = async () => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    await client.query('SET synchronous_commit = off')
    // Only a superuser may; others load with the checks on, more slowly.
    await client.query('SET session_replication_role = replica').catch(() => undefined)
    return client
  }
  const [first, second] = await Promise.all([connect(), connect()])
  try {
    const { rows: indexes } = await first.query<{ name: string; definition: string }>(
      `SELECT indexname AS name, indexdef AS definition FROM pg_indexes
       WHERE schemaname = current_schema() AND tablename IN ('users', 'posts', 'audit_events') AND indexname NOT LIKE '%_pkey'
         AND indexname NOT IN (SELECT conname FROM pg_constraint)`
    )
    for (const index of indexes) await first.query(`DROP INDEX "${index.name}"`)
    // Time-ordered UUIDs (PostgreSQL 18) go to the right edge of the primary key's index; random ones where there are none.
    const uuid = (await first.query(`SELECT 1 FROM pg_proc WHERE proname = 'uuidv7'`)).rowCount ? 'uuidv7()' : 'gen_random_uuid()'
    await first.query(
      `INSERT INTO users (id, email, full_name, password_hash, role, is_active, created_at, updated_at)
       SELECT ${uuid}, 'reader' || i || '@example.com', 'Reader ' || i, 'not a password hash', 'user', true,
              timestamptz '2025-01-01' + (i / 2) * interval '1 second', timestamptz '2025-01-01'
       FROM generate_series(1, $1::int) AS i`,
      [size.users]
    )
    // Everyone but the heavy author, in an array: the i-th row's author is a lookup, not a join.
    const others = `(SELECT array_agg(id ORDER BY id) AS ids FROM users WHERE id <> $1::uuid) AS others`
    const posts = second.query(
      `INSERT INTO posts (id, title, content, author_id, version, created_at, updated_at)
       SELECT ${uuid}, 'Post ' || i, $4, CASE WHEN i % $3::int = 0 THEN $1::uuid ELSE ids[1 + i % cardinality(ids)] END, 1,
              timestamptz '2025-06-01' + (i / 2) * interval '1 second', timestamptz '2025-06-01' + (i / 2) * interval '1 second'
       FROM generate_series(1, $2::int) AS i, ${others}`,
      [heavyUserId, size.posts, size.heavyEvery, CONTENT]
    )
    // The column that keeps "about whom" apart from "by whom" exists from the
    // audit-lists migration on; before it, that fact lived only in `details`.
    const hasTarget = (
      await first.query(`SELECT 1 FROM information_schema.columns WHERE table_name = 'audit_events' AND column_name = 'target_user_id'`)
    ).rowCount
    const events = first.query(
      `INSERT INTO audit_events (id, kind, user_id, ip, user_agent, details, created_at${hasTarget ? ', target_user_id' : ''})
       SELECT ${uuid}, ($4::text[])[1 + i % cardinality($4::text[])],
              CASE WHEN i % $3::int = 0 THEN $1::uuid ELSE ids[1 + i % cardinality(ids)] END,
              '203.0.113.' || (i % 250), 'bench/1.0',
              CASE WHEN i % 100 = 7 THEN jsonb_build_object('target_user_id', $1::text, 'fields', jsonb_build_array('full_name')) END,
              timestamptz '2025-06-01' + (i / 2) * interval '1 second'
              ${hasTarget ? ', CASE WHEN i % 100 = 7 THEN $1::uuid END' : ''}
       FROM generate_series(1, $2::int) AS i, ${others}`,
      [heavyUserId, size.events, size.heavyEvery, FILLED_KINDS]
    )
    const trace = (what: string) => process.env.FILL_TRACE && process.stderr.write(`${what} at ${((performance.now() - started) / 1000).toFixed(1)} s\n`)
    trace('users')
    await Promise.all([posts.then(() => trace('posts')), events.then(() => trace('events'))])
    const build = async (client: pg.Client, list: typeof indexes) => {
      await client.query(`SET maintenance_work_mem = '256MB'`)
      for (const index of list) await client.query(index.definition)
    }
    await Promise.all([build(first, indexes.filter((_, i) => i % 2 === 0)), build(second, indexes.filter((_, i) => i % 2 === 1))])
    trace('indexes')
    await Promise.all([first.query('VACUUM ANALYZE posts'), second.query('VACUUM ANALYZE users, audit_events')])
    // What the load wrote goes to disk now, not during the measurements.
    await first.query('CHECKPOINT').catch(() => undefined)
    trace('vacuum')
  } finally {
    await Promise.all([first.end(), second.end()])
  }
  return { seconds: (performance.now() - started) / 1000 }
}

export interface ListCase {
  name: string
  label: string
  /** The list's path, without `limit`. */
  path: string
  /** SQL for the keys (created_at, id) of the list's rows in its order; $1 is the heavy author. */
  keySql: string
  /** Whether the list needs the admin's token. */
  admin: boolean
}

export const PAGES_DEEP = 2000

/** The lists measured (each at its default page size, and posts at 100 too, the worst case). */
export function listCases(heavyUserId: string): ListCase[] {
  const desc = 'ORDER BY created_at DESC, id DESC'
  const kind = FILLED_KINDS[0] ?? ''
  return [
    { name: 'posts', label: '`GET /posts`', path: '/posts', keySql: `SELECT created_at, id FROM posts ${desc}`, admin: false },
    {
      name: 'authorPosts',
      label: '`GET /posts?author_id=…`',
      path: `/posts?author_id=${heavyUserId}`,
      keySql: `SELECT created_at, id FROM posts WHERE author_id = $1 ${desc}`,
      admin: false
    },
    { name: 'users', label: '`GET /users`', path: '/users', keySql: 'SELECT created_at, id FROM users ORDER BY created_at, id', admin: true },
    {
      name: 'auditKind',
      label: `\`GET /audit-events?kind=${kind}\``,
      path: `/audit-events?kind=${kind}`,
      keySql: `SELECT created_at, id FROM audit_events WHERE kind = '${kind}' ${desc}`,
      admin: true
    },
    {
      name: 'auditUser',
      label: '`GET /audit-events?user_id=…`',
      path: `/audit-events?user_id=${heavyUserId}`,
      keySql: `SELECT created_at, id FROM audit_events WHERE (user_id = $1 OR details->>'target_user_id' = $1::text) ${desc}`,
      admin: true
    }
  ]
}

/** A list's path with a page size. */
export const withLimit = (path: string, limit: number) => `${path}${path.includes('?') ? '&' : '?'}limit=${limit}`

/** The cursor of a page that starts after the row with this key, as the service writes it. */
export const cursorAfter = (key: { created_at: Date; id: string }) =>
  Buffer.from(`${key.created_at.toISOString()}|${key.id}`).toString('base64url')

/** The cursor of the page that starts `depth` rows into a list. */
export async function deepCursor(url: string, list: ListCase, heavyUserId: string, depth: number): Promise<string> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const params = list.keySql.includes('$1') ? [heavyUserId] : []
    const { rows } = await client.query<{ created_at: Date; id: string }>(`${list.keySql} OFFSET ${depth - 1} LIMIT 1`, params)
    const key = rows[0]
    if (!key) throw new Error(`${list.name} has fewer than ${depth} rows`)
    return cursorAfter(key)
  } finally {
    await client.end()
  }
}

/** How many rows a list has. */
export async function count(url: string, list: ListCase, heavyUserId: string): Promise<number> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const params = list.keySql.includes('$1') ? [heavyUserId] : []
    const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM (${list.keySql}) AS rows`, params)
    return rows[0]?.n ?? 0
  } finally {
    await client.end()
  }
}
