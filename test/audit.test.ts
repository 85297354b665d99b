// The audit trail: which security events are recorded, with actor, address
// and user agent, and GET /audit-events for admins (paginated, filtered).
import { randomUUID } from 'node:crypto'
import type { LightMyRequestResponse } from 'fastify'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import {
  adminWithToken,
  basicAuth,
  bearer,
  buildApp,
  fileDatabase,
  login,
  PASSWORD,
  serviceClient,
  signup,
  tokenRequest,
  uniqueEmail,
  useApp,
  userWithToken
} from './helper.js'

const ctx = useApp({ LOGIN_LOCKOUT_THRESHOLD: 2 })

interface AuditEventDto {
  id: string
  kind: string
  user_id: string | null
  client_id: string | null
  session_id: string | null
  ip: string | null
  user_agent: string | null
  details: Record<string, unknown> | null
  created_at: string
}
interface AuditPage {
  data: AuditEventDto[]
  next_cursor: string | null
}

const AGENT = { 'user-agent': 'audit-test/1.0' }

async function events(headers: Record<string, string>, query = ''): Promise<AuditPage> {
  const response = await ctx.app.inject({ method: 'GET', url: `/audit-events${query}`, headers })
  expect(response.statusCode).toBe(200)
  return response.json<AuditPage>()
}

describe('recorded events', () => {
  it('logins, failures, lockouts, refreshes, reuse, logout, revocation and password changes, with address and user agent', async () => {
    const admin = await adminWithToken(ctx.app)
    const user = await signup(ctx.app)
    const form = (fields: Record<string, string>) =>
      ctx.app.inject({
        method: 'POST',
        url: '/auth/token',
        remoteAddress: '192.0.2.7',
        headers: { ...AGENT, 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams(fields).toString()
      })
    await form({ grant_type: 'password', username: user.email, password: 'not the password' })
    const tokens = (await form({ grant_type: 'password', username: user.email, password: PASSWORD })).json()
    const next = (await form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token })).json()
    await form({ grant_type: 'refresh_token', refresh_token: next.refresh_token })
    // Not the latest rotation: reuse, which ends the session.
    await form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token })
    const again = await login(ctx.app, user.email)
    await ctx.app.inject({
      method: 'PUT',
      url: '/users/me/password',
      headers: bearer(again.access_token),
      payload: { current_password: PASSWORD, new_password: 'a brand new passphrase' }
    })
    await ctx.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(again.access_token) })
    const third = await login(ctx.app, user.email, 'a brand new passphrase')
    await ctx.app.inject({ method: 'POST', url: '/auth/revoke', payload: { token: third.refresh_token } })
    // Two failures lock the email out (this file's threshold).
    await form({ grant_type: 'password', username: user.email, password: 'wrong again' })
    await form({ grant_type: 'password', username: user.email, password: 'and wrong again' })

    const page = await events(admin.headers, `?user_id=${user.id}&limit=100`)
    // Events of one millisecond have no order among themselves: compare as a multiset.
    const kinds = page.data.map((event) => event.kind).sort()
    expect(kinds).toEqual([
      'user.signup',
      'login.failure',
      'login.success',
      'token.refresh',
      'token.refresh',
      'refresh_token.reuse',
      'login.success',
      'password.changed',
      'session.logout',
      'login.success',
      'session.revoked',
      'login.failure',
      'login.failure',
      'login.locked'
    ].sort())
    const failure = page.data.find((event) => event.kind === 'login.failure')
    expect(failure).toMatchObject({ user_id: user.id, ip: '192.0.2.7', user_agent: 'audit-test/1.0' })
    const reuse = page.data.find((event) => event.kind === 'refresh_token.reuse')
    expect(reuse).toMatchObject({ user_id: user.id, session_id: expect.any(String) })
    expect(page.data.find((event) => event.kind === 'login.locked')?.details).toEqual({ lock_seconds: 30 })
    expect(new Date(page.data[0]?.created_at ?? 0).getTime()).toBeGreaterThan(Date.now() - 60_000)
  })

  it('a failed login for an unknown email is recorded without an account', async () => {
    const admin = await adminWithToken(ctx.app)
    await tokenRequest(ctx.app, { grant_type: 'password', username: uniqueEmail('ghost'), password: 'whatever it is' })
    const [latest] = (await events(admin.headers, '?kind=login.failure&limit=1')).data
    expect(latest).toMatchObject({ kind: 'login.failure', user_id: null, client_id: null })
  })

  it('role and activity changes name the acting admin or service client, and the account changed', async () => {
    const admin = await adminWithToken(ctx.app)
    const user = await userWithToken(ctx.app)
    await ctx.app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: admin.headers, payload: { role: 'admin' } })

    // Changing an admin takes every administrative scope, not only users:write.
    const client = await serviceClient(ctx.app, ['posts:moderate', 'users:read', 'users:write', 'clients:manage', 'audit:read'])
    const clientToken = (
      await tokenRequest(ctx.app, { grant_type: 'client_credentials' }, { authorization: basicAuth(client.clientId, client.clientSecret) })
    ).json().access_token
    await ctx.app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: bearer(clientToken), payload: { is_active: false } })

    const updates = (await events(admin.headers, `?user_id=${user.id}&kind=user.updated`)).data
    expect(updates).toHaveLength(2)
    expect(updates[0]).toMatchObject({ user_id: null, client_id: client.clientId, details: { target_user_id: user.id, is_active: false } })
    expect(updates[1]).toMatchObject({ user_id: admin.id, client_id: null, details: { target_user_id: user.id, role: 'admin' } })
    expect(updates[1]?.session_id).toEqual(expect.any(String))
  })

  it('client changes and client authentication name the actor and the client', async () => {
    const admin = await adminWithToken(ctx.app)
    const created = await ctx.app.inject({ method: 'POST', url: '/clients', headers: admin.headers, payload: { name: 'audited', scopes: ['clients:manage'] } })
    const { client_id: clientId, client_secret: secret } = created.json()
    const managerToken = (
      await tokenRequest(ctx.app, { grant_type: 'client_credentials' }, { authorization: basicAuth(clientId, secret) })
    ).json().access_token
    // A service client with clients:manage rotates its own secret, then the admin deletes it.
    await ctx.app.inject({ method: 'POST', url: `/clients/${clientId}/secret`, headers: bearer(managerToken) })
    await ctx.app.inject({ method: 'DELETE', url: `/clients/${clientId}`, headers: admin.headers })
    await tokenRequest(ctx.app, { grant_type: 'client_credentials' }, { authorization: basicAuth(clientId, 'bapi_cs_wrong') })

    const all = (await events(admin.headers, '?limit=100')).data
    const find = (kind: string) => all.find((event) => event.kind === kind && JSON.stringify(event).includes(clientId))
    expect(find('client.created')).toMatchObject({ user_id: admin.id, details: { target_client_id: clientId } })
    expect(find('client.token')).toMatchObject({ client_id: clientId, user_id: null })
    expect(find('client.secret_rotated')).toMatchObject({ user_id: null, client_id: clientId, details: { target_client_id: clientId } })
    expect(find('client.deleted')).toMatchObject({ user_id: admin.id, details: { target_client_id: clientId } })
    expect(find('client.failure')).toMatchObject({ user_id: null, client_id: null, details: { attempted_client_id: clientId } })
    expect(JSON.stringify(all)).not.toContain('bapi_cs_')
  })
})

describe('GET /audit-events', () => {
  it('pages through events newest first, without repeats', async () => {
    const admin = await adminWithToken(ctx.app)
    for (let i = 0; i < 3; i++) await userWithToken(ctx.app)
    await ctx.app.auditLog.flush()
    const total = await ctx.app.prisma.auditEvent.count()
    const seen: AuditEventDto[] = []
    let cursor: string | null = null
    do {
      const page: AuditPage = await events(admin.headers, `?limit=4${cursor ? `&cursor=${cursor}` : ''}`)
      expect(page.data.length).toBeLessThanOrEqual(4)
      seen.push(...page.data)
      cursor = page.next_cursor
    } while (cursor)
    expect(seen.length).toBe(total)
    expect(new Set(seen.map((event) => event.id)).size).toBe(seen.length)
    const times = seen.map((event) => Date.parse(event.created_at))
    expect(times).toEqual([...times].sort((a, b) => b - a))
    expect(Object.keys(seen[0] ?? {}).sort()).toEqual(
      ['client_id', 'created_at', 'details', 'id', 'ip', 'kind', 'session_id', 'user_agent', 'user_id'].sort()
    )
  })

  it('filters by kind and by user', async () => {
    const admin = await adminWithToken(ctx.app)
    const user = await userWithToken(ctx.app)
    const byKind = await events(admin.headers, '?kind=user.signup&limit=100')
    expect(byKind.data.length).toBeGreaterThan(0)
    expect(byKind.data.every((event) => event.kind === 'user.signup')).toBe(true)
    const byUser = await events(admin.headers, `?user_id=${user.id}`)
    expect(byUser.data.map((event) => event.kind).sort()).toEqual(['login.success', 'user.signup'])
    expect((await events(admin.headers, `?user_id=${randomUUID()}`)).data).toEqual([])
  })

  it('is for admins only: users and service clients get 403, no token 401', async () => {
    const user = await userWithToken(ctx.app)
    const expectStatus = (response: LightMyRequestResponse, status: number) => {
      expect(response.statusCode).toBe(status)
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/)
    }
    expectStatus(await ctx.app.inject({ method: 'GET', url: '/audit-events', headers: user.headers }), 403)
    expectStatus(await ctx.app.inject({ method: 'GET', url: '/audit-events' }), 401)
    const client = await serviceClient(ctx.app, ['users:read', 'users:write', 'clients:manage'])
    const token = (
      await tokenRequest(ctx.app, { grant_type: 'client_credentials' }, { authorization: basicAuth(client.clientId, client.clientSecret) })
    ).json().access_token
    expectStatus(await ctx.app.inject({ method: 'GET', url: '/audit-events', headers: bearer(token) }), 403)
  })

  it('refuses a demoted admin at once: the demotion ends their sessions', async () => {
    const admin = await adminWithToken(ctx.app)
    const other = await adminWithToken(ctx.app)
    const demoted = await ctx.app.inject({ method: 'PATCH', url: `/users/${admin.id}`, headers: other.headers, payload: { role: 'user' } })
    expect(demoted.statusCode).toBe(200)
    expect((await ctx.app.inject({ method: 'GET', url: '/audit-events', headers: admin.headers })).statusCode).toBe(401)
  })

  it('needs audit:read, not the admin role: an admin token narrowed to users:read is refused', async () => {
    const admin = await adminWithToken(ctx.app)
    const narrowed = await login(ctx.app, admin.email, PASSWORD, 'users:read')
    const response = await ctx.app.inject({ method: 'GET', url: '/audit-events', headers: bearer(narrowed.access_token) })
    expect(response.statusCode).toBe(403)
    expect(response.headers['www-authenticate']).toContain('scope="audit:read"')
    const client = await serviceClient(ctx.app, ['audit:read'])
    const clientToken = (
      await tokenRequest(ctx.app, { grant_type: 'client_credentials' }, { authorization: basicAuth(client.clientId, client.clientSecret) })
    ).json().access_token
    expect((await ctx.app.inject({ method: 'GET', url: '/audit-events', headers: bearer(clientToken) })).statusCode).toBe(200)
  })

  it('refuses an unknown kind, a malformed user id or cursor, and unknown parameters', async () => {
    const admin = await adminWithToken(ctx.app)
    for (const query of ['?kind=nothing', '?user_id=42', '?cursor=!!!', '?cursor=bm9wZQ', '?limit=0', '?limit=101', '?actor=me']) {
      const response = await ctx.app.inject({ method: 'GET', url: `/audit-events${query}`, headers: admin.headers })
      expect(response.statusCode, query).toBe(400)
      expect(response.json().errors).toEqual(expect.any(Array))
    }
  })
})

describe('writing events', () => {
  const failedGrant = (app = ctx.app, clientId: string = randomUUID()) =>
    tokenRequest(app, { grant_type: 'client_credentials' }, { ...AGENT, authorization: basicAuth(clientId, 'bapi_cs_wrong') })

  it('records every one of many events at once, each with the time it happened', async () => {
    const admin = await adminWithToken(ctx.app)
    const ids: string[] = Array.from({ length: 200 }, () => randomUUID())
    const started = Date.now()
    const answers = await Promise.all(ids.map((id) => failedGrant(ctx.app, id)))
    expect(answers.every((answer) => answer.statusCode === 401)).toBe(true)

    const recorded: AuditEventDto[] = []
    let cursor: string | null = null
    do {
      const page: AuditPage = await events(admin.headers, `?kind=client.failure&limit=100${cursor ? `&cursor=${cursor}` : ''}`)
      recorded.push(...page.data)
      cursor = page.next_cursor
    } while (cursor)
    const attempted = new Set(recorded.map((event) => event.details?.attempted_client_id))
    expect(ids.filter((id) => !attempted.has(id))).toEqual([])
    for (const event of recorded.filter((e) => ids.includes(String(e.details?.attempted_client_id)))) {
      expect(event.user_agent).toBe('audit-test/1.0')
      expect(Date.parse(event.created_at)).toBeGreaterThanOrEqual(started - 5)
    }
  })

  it('loses no other event to one that the database refuses, and counts the one it lost', async () => {
    const admin = await adminWithToken(ctx.app)
    const lost = async () => {
      const metric = await ctx.app.metrics.registry.getSingleMetric('blog_api_audit_events_lost_total')?.get()
      return metric?.values.find((value) => value.labels.reason === 'write_failed')?.value ?? NaN
    }
    const lostBefore = await lost()
    const ids = Array.from({ length: 20 }, () => randomUUID())
    // PostgreSQL's JSON cannot hold U+0000: this event's details are refused.
    const answers = await Promise.all([failedGrant(ctx.app, 'bad\u0000id'), ...ids.map((id) => failedGrant(ctx.app, id))])
    expect(answers.every((answer) => answer.statusCode < 500)).toBe(true)
    const recorded = (await events(admin.headers, '?kind=client.failure&limit=100')).data
    const attempted = new Set(recorded.map((event) => event.details?.attempted_client_id))
    expect(ids.filter((id) => !attempted.has(id))).toEqual([])
    expect(await lost()).toBe(lostBefore + 1)
  })

  it('writes what is still queued when the app closes', async () => {
    const app = await buildApp()
    const ids = Array.from({ length: 30 }, () => randomUUID())
    await Promise.all(ids.map((id) => failedGrant(app, id)))
    await app.close()

    const sql = new pg.Client({ connectionString: (await fileDatabase()).url })
    await sql.connect()
    try {
      const { rows } = await sql.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM audit_events WHERE kind = 'client.failure' AND details->>'attempted_client_id' = ANY($1)`,
        [ids]
      )
      expect(rows[0]?.n).toBe(ids.length)
    } finally {
      await sql.end()
    }
  })
})
