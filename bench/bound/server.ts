// The bound: the service's database routes written as directly as Node
// allows, to say how close to its hardware the service runs. A bare
// node:http server and the pg driver with named prepared statements and the
// service's pool size, issuing the same SQL (the same columns and joins) and
// answering the same JSON for:
//
//   GET  /posts/:id      a post with its author, and its ETag
//   GET  /posts          ?limit= &cursor= &author_id=, newest first (keyset)
//   POST /posts          { title, content } with a bearer token → 201
//   GET  /users/me       the caller's account, with a bearer token
//
// Bearer tokens are the service's own (HS256 in the benchmark): a token is
// checked once (signature, iss, aud, exp) and then remembered by its text, as
// the service does. No validation beyond what the SQL needs, no security
// headers, no logging: whatever the service does on top of this is what it
// costs to be a service.
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import pg from 'pg'

const secret = process.env.JWT_SECRET ?? ''
const issuer = process.env.JWT_ISSUER ?? 'http://localhost:3000'
const audience = process.env.JWT_AUDIENCE ?? 'blog-api'
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.DATABASE_POOL_SIZE ?? 10) })

const POST_COLUMNS = 'p.id, p.title, p.content, p.version, p.created_at, p.updated_at, p.author_id, u.full_name'
const statements = {
  post: `SELECT ${POST_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id WHERE p.id = $1`,
  firstPage: `SELECT ${POST_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id ORDER BY p.created_at DESC, p.id DESC LIMIT $1`,
  nextPage: `SELECT ${POST_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id
    WHERE (p.created_at, p.id) < ($2, $3) ORDER BY p.created_at DESC, p.id DESC LIMIT $1`,
  authorFirstPage: `SELECT ${POST_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id
    WHERE p.author_id = $2 ORDER BY p.created_at DESC, p.id DESC LIMIT $1`,
  authorNextPage: `SELECT ${POST_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id
    WHERE p.author_id = $2 AND (p.created_at, p.id) < ($3, $4) ORDER BY p.created_at DESC, p.id DESC LIMIT $1`,
  create: `WITH p AS (
      INSERT INTO posts (id, title, content, author_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)
      RETURNING id, title, content, version, created_at, updated_at, author_id
    ) SELECT ${POST_COLUMNS} FROM p JOIN users u ON u.id = p.author_id`,
  me: 'SELECT id, email, email_verified_at, pending_email, full_name, role, is_active, mfa_enabled, created_at FROM users WHERE id = $1'
}
type Statement = keyof typeof statements

async function query(name: Statement, values: unknown[]) {
  return (await pool.query({ name, text: statements[name], values })).rows as Record<string, unknown>[]
}

interface PostRow {
  id: string
  title: string
  content: string
  version: number
  created_at: Date
  updated_at: Date
  author_id: string
  full_name: string
}

const postDto = (row: PostRow) => ({
  id: row.id,
  title: row.title,
  content: row.content,
  author: { id: row.author_id, full_name: row.full_name },
  created_at: row.created_at.toISOString(),
  updated_at: row.updated_at.toISOString()
})
const etag = (row: PostRow) => `"${row.id.slice(0, 8)}-v${row.version}"`

function send(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers })
  response.end(body === undefined ? undefined : JSON.stringify(body))
}

// ------------------------------------------------------------------ tokens

const verified = new Map<string, { sub: string; exp: number }>()

function caller(request: IncomingMessage): string | undefined {
  const token = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1]
  if (!token) return undefined
  const known = verified.get(token)
  if (known) return known.exp * 1000 > Date.now() ? known.sub : undefined
  const [header, payload, signature] = token.split('.')
  if (!header || !payload || !signature) return undefined
  const expected = createHmac('sha256', secret).update(`${header}.${payload}`).digest()
  const given = Buffer.from(signature, 'base64url')
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { sub: string; exp: number; iss: string; aud: string }
  if (claims.iss !== issuer || claims.aud !== audience || claims.exp * 1000 <= Date.now()) return undefined
  if (verified.size > 10_000) verified.clear()
  verified.set(token, claims)
  return claims.sub
}

// ------------------------------------------------------------------ routes

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

async function listPosts(url: URL, response: ServerResponse) {
  const limit = Number(url.searchParams.get('limit') ?? 20)
  const cursor = url.searchParams.get('cursor')
  const author = url.searchParams.get('author_id')
  const take = limit + 1
  let rows: Record<string, unknown>[]
  if (cursor) {
    const [time, id] = Buffer.from(cursor, 'base64url').toString().split('|')
    const key = [new Date(time ?? ''), id]
    rows = author ? await query('authorNextPage', [take, author, ...key]) : await query('nextPage', [take, ...key])
  } else {
    rows = author ? await query('authorFirstPage', [take, author]) : await query('firstPage', [take])
  }
  const page = (rows as unknown as PostRow[]).slice(0, limit)
  const last = page.at(-1)
  send(response, 200, {
    data: page.map(postDto),
    next_cursor: rows.length > limit && last ? Buffer.from(`${last.created_at.toISOString()}|${last.id}`).toString('base64url') : null
  })
}

async function route(request: IncomingMessage, response: ServerResponse) {
  const url = new URL(request.url ?? '/', 'http://bound')
  if (request.method === 'GET' && url.pathname.startsWith('/posts/')) {
    const id = url.pathname.slice('/posts/'.length)
    if (!UUID.test(id)) return send(response, 400, { detail: 'bad id' })
    const [row] = (await query('post', [id])) as unknown as PostRow[]
    if (!row) return send(response, 404, { detail: 'not found' })
    return send(response, 200, postDto(row), { etag: etag(row) })
  }
  if (request.method === 'GET' && url.pathname === '/posts') return listPosts(url, response)
  if (request.method === 'POST' && url.pathname === '/posts') {
    const sub = caller(request)
    if (!sub) return send(response, 401, { detail: 'token' })
    const body = JSON.parse(await readBody(request)) as { title?: unknown; content?: unknown }
    if (typeof body.title !== 'string' || typeof body.content !== 'string') return send(response, 400, { detail: 'body' })
    const [row] = (await query('create', [randomUUID(), body.title.trim(), body.content.trim(), sub, new Date()])) as unknown as PostRow[]
    if (!row) return send(response, 500, { detail: 'no row' })
    return send(response, 201, postDto(row), { etag: etag(row), location: `/posts/${row.id}` })
  }
  if (request.method === 'GET' && url.pathname === '/users/me') {
    const sub = caller(request)
    if (!sub) return send(response, 401, { detail: 'token' })
    const [row] = await query('me', [sub])
    if (!row) return send(response, 404, { detail: 'not found' })
    return send(response, 200, {
      id: row.id,
      email: row.email,
      email_verified: row.email_verified_at !== null,
      ...(row.pending_email === null ? {} : { pending_email: row.pending_email }),
      full_name: row.full_name,
      role: row.role,
      is_active: row.is_active,
      mfa_enabled: row.mfa_enabled,
      created_at: (row.created_at as Date).toISOString()
    })
  }
  return send(response, 404, { detail: 'no route' })
}

const server = createServer((request, response) => {
  route(request, response).catch((error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`)
    if (!response.headersSent) send(response, 500, { detail: 'error' })
  })
})
server.keepAliveTimeout = 72_000
server.listen(Number(process.env.PORT ?? 3300), '127.0.0.1')
process.once('SIGTERM', () => {
  server.close()
  server.closeAllConnections()
  void pool.end().finally(() => process.exit(0))
})
