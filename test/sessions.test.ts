// Refresh-token rotation, reuse detection, session lifetimes, logout and
// RFC 7009 revocation, on one instance and across instances.
import { describe, expect, it } from 'vitest'
import { hashOpaqueToken } from '../src/lib/opaque-tokens.js'
import { appClient, basicAuth, bearer, buildApp, decodeJwt, login, PASSWORD, serviceClient, signup, tokenRequest, useApp, userWithToken } from './helper.js'

const ctx = useApp()

const refresh = (refreshToken: string, extra: Record<string, string> = {}) =>
  tokenRequest(ctx.app, { grant_type: 'refresh_token', refresh_token: refreshToken, ...extra })
const me = (accessToken: string) => ctx.app.inject({ method: 'GET', url: '/users/me', headers: bearer(accessToken) })

describe('refresh token rotation', () => {
  it('a refresh gives a new access token and a new refresh token in the same session', async () => {
    const user = await userWithToken(ctx.app)
    const response = await refresh(user.tokens.refresh_token ?? '')
    expect(response.statusCode).toBe(200)
    expect(response.headers['cache-control']).toBe('no-store')
    const body = response.json()
    expect(body).toEqual({
      access_token: expect.any(String),
      token_type: 'bearer',
      expires_in: 900,
      refresh_token: expect.stringMatching(/^bapi_rt_/),
      scope: 'posts:write'
    })
    expect(body.refresh_token).not.toBe(user.tokens.refresh_token)
    expect(decodeJwt(body.access_token).claims.sid).toBe(decodeJwt(user.tokens.access_token).claims.sid)
    expect((await me(body.access_token)).statusCode).toBe(200)
  })

  it('stores refresh tokens only as hashes', async () => {
    const user = await userWithToken(ctx.app)
    const rows = await ctx.app.prisma.refreshToken.findMany({ where: { session: { userId: user.id } } })
    expect(rows).toHaveLength(1)
    expect(rows[0]?.tokenHash).toMatch(/^[0-9a-f]{64}$/)
    expect(JSON.stringify(rows)).not.toContain(user.tokens.refresh_token)
  })

  it('a spent refresh token used again ends the whole session, access tokens included', async () => {
    const user = await userWithToken(ctx.app)
    const first = user.tokens.refresh_token ?? ''
    const second = (await refresh(first)).json()
    const rotated = (await refresh(second.refresh_token)).json()
    // Not the latest rotation, so not a retry: reuse.
    const replay = await refresh(first)
    expect(replay.statusCode).toBe(400)
    expect(replay.json()).toEqual({ error: 'invalid_grant', error_description: 'The refresh token is invalid, expired or revoked.' })
    // The thief's replay killed the branch the legitimate client holds too.
    expect((await refresh(rotated.refresh_token)).json().error).toBe('invalid_grant')
    expect((await me(rotated.access_token)).statusCode).toBe(401)
    expect((await me(user.tokens.access_token)).statusCode).toBe(401)
    await ctx.app.auditLog.flush()
    const events = await ctx.app.prisma.auditEvent.findMany({ where: { userId: user.id, kind: 'refresh_token.reuse' } })
    expect(events).toHaveLength(1)
    const session = await ctx.app.prisma.session.findFirstOrThrow({ where: { userId: user.id } })
    expect(session.endReason).toBe('refresh_token_reuse')
  })

  it('racing refreshes with one token take turns: one rotation, the others its retries, one live branch', async () => {
    const user = await userWithToken(ctx.app)
    const token = user.tokens.refresh_token ?? ''
    const answers = await Promise.all([refresh(token), refresh(token), refresh(token)])
    expect(answers.map((response) => response.statusCode)).toEqual([200, 200, 200])
    const issued = new Set(answers.map((response) => response.json().refresh_token))
    expect(issued.size).toBe(1)
    const live = await ctx.app.prisma.refreshToken.findMany({ where: { spentAt: null, session: { userId: user.id, endedAt: null } } })
    expect(live).toHaveLength(1)
    expect(live[0]?.tokenHash).toBe(hashOpaqueToken([...issued][0]))
  })

  it('a refresh may narrow the scope, never widen it, and a refused widening spends nothing', async () => {
    const user = await signup(ctx.app)
    await ctx.app.prisma.user.update({ where: { id: user.id }, data: { role: 'admin' } })
    const tokens = await login(ctx.app, user.email, PASSWORD, 'posts:write users:read')
    const widened = await refresh(tokens.refresh_token ?? '', { scope: 'posts:write users:read clients:manage' })
    expect(widened.statusCode).toBe(400)
    expect(widened.json().error).toBe('invalid_scope')
    const narrowed = await refresh(tokens.refresh_token ?? '', { scope: 'users:read' })
    expect(narrowed.statusCode).toBe(200)
    expect(narrowed.json().scope).toBe('users:read')
    expect(decodeJwt(narrowed.json().access_token).claims.scope).toBe('users:read')
    // The session keeps its original grant: the next refresh without scope has it all.
    const next = await refresh(narrowed.json().refresh_token)
    expect(next.json().scope).toBe('posts:write users:read')
  })

  it('an unknown refresh token is invalid_grant', async () => {
    const response = await refresh('bapi_rt_' + 'A'.repeat(43))
    expect(response.statusCode).toBe(400)
    expect(response.json().error).toBe('invalid_grant')
  })

  it('a missing refresh_token is invalid_request', async () => {
    const response = await tokenRequest(ctx.app, { grant_type: 'refresh_token' })
    expect(response.json().error).toBe('invalid_request')
  })
})

describe('session lifetimes', () => {
  it('a session idle for longer than SESSION_IDLE_TTL ends', async () => {
    const user = await userWithToken(ctx.app)
    await ctx.app.prisma.session.updateMany({
      where: { userId: user.id },
      data: { lastUsedAt: new Date(Date.now() - 15 * 24 * 3600 * 1000) }
    })
    const response = await refresh(user.tokens.refresh_token ?? '')
    expect(response.json().error).toBe('invalid_grant')
    const session = await ctx.app.prisma.session.findFirstOrThrow({ where: { userId: user.id } })
    expect(session.endReason).toBe('expired')
  })

  it('a session past SESSION_MAX_AGE ends, however active', async () => {
    const user = await userWithToken(ctx.app)
    await ctx.app.prisma.session.updateMany({ where: { userId: user.id }, data: { expiresAt: new Date(Date.now() - 1000) } })
    expect((await refresh(user.tokens.refresh_token ?? '')).json().error).toBe('invalid_grant')
  })

  it('a deactivated user cannot refresh', async () => {
    const user = await userWithToken(ctx.app)
    await ctx.app.prisma.user.update({ where: { id: user.id }, data: { isActive: false } })
    expect((await refresh(user.tokens.refresh_token ?? '')).json().error).toBe('invalid_grant')
  })
})

describe('a retried refresh (REFRESH_REUSE_GRACE, 30 s by default)', () => {
  it('a retry of the latest refresh gets the same new refresh token, and a new access token', async () => {
    const user = await userWithToken(ctx.app)
    const first = user.tokens.refresh_token ?? ''
    const answer = (await refresh(first)).json()
    // The client lost that answer and sends the same request again.
    const retry = await refresh(first)
    expect(retry.statusCode).toBe(200)
    expect(retry.json().refresh_token).toBe(answer.refresh_token)
    expect(retry.json().access_token).not.toBe(answer.access_token)
    expect((await me(retry.json().access_token)).statusCode).toBe(200)
    // The session goes on from there, and the token handed out twice is still stored only as a hash.
    const next = await refresh(answer.refresh_token)
    expect(next.statusCode).toBe(200)
    const rows = await ctx.app.prisma.refreshToken.findMany({ where: { session: { userId: user.id } }, orderBy: { generation: 'asc' } })
    expect(rows.map((row) => row.generation)).toEqual([0, 1, 2])
    expect(JSON.stringify(rows)).not.toContain(answer.refresh_token)
    const events = await ctx.app.prisma.auditEvent.findMany({ where: { userId: user.id, kind: 'token.refresh' } })
    expect(events.filter((event) => JSON.stringify(event.details) === '{"retried":true}')).toHaveLength(1)
  })

  it('a retry after its successor was used is theft: the session ends', async () => {
    const user = await userWithToken(ctx.app)
    const first = user.tokens.refresh_token ?? ''
    const answer = (await refresh(first)).json()
    const next = (await refresh(answer.refresh_token)).json()
    expect((await refresh(first)).json().error).toBe('invalid_grant')
    expect((await refresh(next.refresh_token)).json().error).toBe('invalid_grant')
    expect((await me(next.access_token)).statusCode).toBe(401)
  })

  it('a retry later than the window is theft: the session ends', async () => {
    const user = await userWithToken(ctx.app)
    const first = user.tokens.refresh_token ?? ''
    const answer = (await refresh(first)).json()
    await ctx.app.prisma.refreshToken.updateMany({
      where: { tokenHash: hashOpaqueToken(first) },
      data: { spentAt: new Date(Date.now() - 31_000) }
    })
    expect((await refresh(first)).json().error).toBe('invalid_grant')
    expect((await refresh(answer.refresh_token)).json().error).toBe('invalid_grant')
    const session = await ctx.app.prisma.session.findFirstOrThrow({ where: { userId: user.id } })
    expect(session.endReason).toBe('refresh_token_reuse')
  })

  describe('with REFRESH_REUSE_GRACE=0', () => {
    const strict = useApp({ REFRESH_REUSE_GRACE: 0 })

    it('any reuse ends the session, even an immediate retry', async () => {
      const user = await userWithToken(strict.app)
      const first = user.tokens.refresh_token ?? ''
      const answer = (await tokenRequest(strict.app, { grant_type: 'refresh_token', refresh_token: first })).json()
      expect((await tokenRequest(strict.app, { grant_type: 'refresh_token', refresh_token: first })).json().error).toBe('invalid_grant')
      expect((await tokenRequest(strict.app, { grant_type: 'refresh_token', refresh_token: answer.refresh_token })).json().error).toBe('invalid_grant')
    })
  })
})

describe('refresh tokens are bound to their client (RFC 6749 §6)', () => {
  const credentials = (client: { clientId: string; clientSecret: string }) => ({ authorization: basicAuth(client.clientId, client.clientSecret) })

  it("a public client's refresh token cannot be redeemed with another client's credentials, and spends nothing", async () => {
    const user = await userWithToken(ctx.app)
    // Another client that may refresh tokens (one that may not is refused before that: unauthorized_client).
    const app = await appClient(ctx.app, { isPublic: false })
    const other = { clientId: app.clientId, clientSecret: app.clientSecret ?? '' }
    const stolen = await tokenRequest(ctx.app, { grant_type: 'refresh_token', refresh_token: user.tokens.refresh_token ?? '' }, credentials(other))
    expect(stolen.statusCode).toBe(400)
    expect(stolen.json().error).toBe('invalid_grant')
    // Nothing was spent: the rightful client refreshes as usual.
    expect((await refresh(user.tokens.refresh_token ?? '')).statusCode).toBe(200)
    const events = await ctx.app.prisma.auditEvent.findMany({ where: { userId: user.id, kind: 'refresh_token.wrong_client' } })
    expect(events).toHaveLength(1)
  })

  it("a confidential client's refresh token needs that client, authenticated", async () => {
    // A first-party tool of the service's own that logs users in with their password.
    const client = await serviceClient(ctx.app, ['posts:write'], { grantTypes: ['password', 'refresh_token'], firstParty: true })
    const user = await signup(ctx.app)
    const login = await tokenRequest(ctx.app, { grant_type: 'password', username: user.email, password: PASSWORD }, credentials(client))
    expect(login.statusCode).toBe(200)
    const token = login.json().refresh_token
    expect(decodeJwt(login.json().access_token).claims.client_id).toBe(client.clientId)
    // As the public client, or naming the client without its secret, or as another client: refused.
    expect((await refresh(token)).json().error).toBe('invalid_grant')
    const named = await refresh(token, { client_id: client.clientId })
    expect(named.statusCode).toBe(401)
    expect(named.json().error).toBe('invalid_client')
    const another = await serviceClient(ctx.app, ['posts:write'], { grantTypes: ['password', 'refresh_token'], firstParty: true })
    expect((await tokenRequest(ctx.app, { grant_type: 'refresh_token', refresh_token: token }, credentials(another))).json().error).toBe('invalid_grant')
    // Its own client redeems it.
    const own = await tokenRequest(ctx.app, { grant_type: 'refresh_token', refresh_token: token }, credentials(client))
    expect(own.statusCode).toBe(200)
    expect(decodeJwt(own.json().access_token).claims.client_id).toBe(client.clientId)
  })

  it('deleting a client ends the sessions users signed in to through it', async () => {
    const client = await serviceClient(ctx.app, ['posts:write'], { grantTypes: ['password', 'refresh_token'], firstParty: true })
    const user = await signup(ctx.app)
    const login = (await tokenRequest(ctx.app, { grant_type: 'password', username: user.email, password: PASSWORD }, credentials(client))).json()
    await ctx.app.clientsRepository.delete(client.clientId, () => undefined)
    expect((await me(login.access_token)).statusCode).toBe(401)
  })
})

describe('refresh decides on the account as it is now', () => {
  it("a refresh gives no more than the role allows now, even if the demotion's session ending was missed", async () => {
    const user = await signup(ctx.app)
    await ctx.app.prisma.user.update({ where: { id: user.id }, data: { role: 'admin' } })
    const tokens = await login(ctx.app, user.email)
    expect(tokens.scope).toContain('users:write')
    // Demoted behind the service's back (no security version change, sessions untouched).
    await ctx.app.prisma.user.update({ where: { id: user.id }, data: { role: 'user' } })
    const refreshed = await refresh(tokens.refresh_token ?? '')
    expect(refreshed.statusCode).toBe(200)
    expect(refreshed.json().scope).toBe('posts:write')
  })

  it('a session whose account moved to another security version cannot be refreshed', async () => {
    const user = await userWithToken(ctx.app)
    await ctx.app.prisma.user.update({ where: { id: user.id }, data: { securityVersion: { increment: 1 } } })
    expect((await refresh(user.tokens.refresh_token ?? '')).json().error).toBe('invalid_grant')
    const session = await ctx.app.prisma.session.findFirstOrThrow({ where: { userId: user.id } })
    expect(session.endReason).toBe('security_changed')
  })
})

describe('logout and revocation', () => {
  it('logout ends the session: its access and refresh tokens stop working at once', async () => {
    const user = await userWithToken(ctx.app)
    const response = await ctx.app.inject({ method: 'POST', url: '/auth/logout', headers: user.headers })
    expect(response.statusCode).toBe(204)
    expect((await me(user.tokens.access_token)).statusCode).toBe(401)
    expect((await me(user.tokens.access_token)).headers['www-authenticate']).toContain('revoked')
    expect((await refresh(user.tokens.refresh_token ?? '')).json().error).toBe('invalid_grant')
  })

  it('logout leaves the user’s other sessions alone', async () => {
    const user = await userWithToken(ctx.app)
    const other = await login(ctx.app, user.email)
    await ctx.app.inject({ method: 'POST', url: '/auth/logout', headers: user.headers })
    expect((await me(other.access_token)).statusCode).toBe(200)
  })

  it('revoking a refresh token ends its session', async () => {
    const user = await userWithToken(ctx.app)
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/revoke',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ token: user.tokens.refresh_token ?? '', token_type_hint: 'refresh_token' }).toString()
    })
    expect(response.statusCode).toBe(200)
    expect(response.body).toBe('')
    expect((await me(user.tokens.access_token)).statusCode).toBe(401)
  })

  it('revoking an access token ends its session', async () => {
    const user = await userWithToken(ctx.app)
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/auth/revoke',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ token: user.tokens.access_token }).toString()
    })
    expect(response.statusCode).toBe(200)
    expect((await me(user.tokens.access_token)).statusCode).toBe(401)
    expect((await refresh(user.tokens.refresh_token ?? '')).json().error).toBe('invalid_grant')
  })

  it('revoking an unknown or invalid token still answers 200 and changes nothing', async () => {
    const before = await ctx.app.prisma.revokedSession.count()
    for (const token of ['bapi_rt_nothing', 'garbage', 'a.b.c']) {
      const response = await ctx.app.inject({ method: 'POST', url: '/auth/revoke', payload: { token } })
      expect(response.statusCode).toBe(200)
    }
    expect(await ctx.app.prisma.revokedSession.count()).toBe(before)
  })

  it('a revocation request without a token is invalid_request', async () => {
    const response = await ctx.app.inject({ method: 'POST', url: '/auth/revoke', payload: {} })
    expect(response.statusCode).toBe(400)
    expect(response.json().error).toBe('invalid_request')
  })
})

describe('revocation across instances', () => {
  it('a session revoked on one instance is refused by another within a second', async () => {
    const other = await buildApp()
    try {
      const user = await userWithToken(ctx.app)
      expect((await other.inject({ method: 'GET', url: '/users/me', headers: user.headers })).statusCode).toBe(200)
      await ctx.app.inject({ method: 'POST', url: '/auth/logout', headers: user.headers })
      const deadline = Date.now() + 1000
      let status = 200
      while (Date.now() < deadline) {
        status = (await other.inject({ method: 'GET', url: '/users/me', headers: user.headers })).statusCode
        if (status === 401) break
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      expect(status).toBe(401)
    } finally {
      await other.close()
    }
  })

  it('an instance started after a revocation loads it', async () => {
    const user = await userWithToken(ctx.app)
    await ctx.app.inject({ method: 'POST', url: '/auth/logout', headers: user.headers })
    const later = await buildApp()
    try {
      expect((await later.inject({ method: 'GET', url: '/users/me', headers: user.headers })).statusCode).toBe(401)
    } finally {
      await later.close()
    }
  })
})

describe('housekeeping', () => {
  it('prunes sessions that ended long ago, with their refresh tokens, and keeps live ones', async () => {
    const gone = await userWithToken(ctx.app)
    const live = await userWithToken(ctx.app)
    await ctx.app.inject({ method: 'POST', url: '/auth/logout', headers: gone.headers })
    await ctx.app.prisma.session.updateMany({ where: { userId: gone.id }, data: { endedAt: new Date(Date.now() - 2 * 86_400_000) } })
    const pruned = await ctx.app.sessionsRepository.prune(new Date(Date.now() - 86_400_000))
    expect(pruned).toBeGreaterThanOrEqual(1)
    expect(await ctx.app.prisma.session.count({ where: { userId: gone.id } })).toBe(0)
    expect(await ctx.app.prisma.refreshToken.count({ where: { session: { userId: gone.id } } })).toBe(0)
    expect((await refresh(live.tokens.refresh_token ?? '')).statusCode).toBe(200)
  })
})
