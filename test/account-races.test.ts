// Logins and refreshes racing changes of the account's security state. Each
// race is made deterministic: the login's password check is held (after the
// real argon2 verification) until the change has committed, which is exactly
// the window an attacker aims at — a login takes most of a second hashing.
// The session must be decided on the account as it is when it is written.
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { adminWithToken, bearer, decodeJwt, holdNextVerification, login, PASSWORD, signup, tokenRequest, useApp, userWithToken } from './helper.js'

const ctx = useApp()

const passwordLogin = (email: string, password = PASSWORD) =>
  tokenRequest(ctx.app, { grant_type: 'password', username: email, password })

const me = (accessToken: string) => ctx.app.inject({ method: 'GET', url: '/users/me', headers: bearer(accessToken) })

async function liveSessions(userId: string) {
  return ctx.app.prisma.session.count({ where: { userId, endedAt: null } })
}

describe('a login in flight during a change of the account', () => {
  it('an admin demoted while their login is hashing gets a user’s scopes, not an admin’s', async () => {
    const owner = await adminWithToken(ctx.app)
    const target = await signup(ctx.app)
    await ctx.app.inject({ method: 'PATCH', url: `/users/${target.id}`, headers: owner.headers, payload: { role: 'admin' } })

    const hold = holdNextVerification(ctx.app)
    const inFlight = passwordLogin(target.email)
    await hold.arrived
    const demoted = await ctx.app.inject({ method: 'PATCH', url: `/users/${target.id}`, headers: owner.headers, payload: { role: 'user' } })
    expect(demoted.statusCode).toBe(200)
    hold.release()

    const answer = await inFlight
    expect(answer.statusCode).toBe(200)
    expect(answer.json().scope).toBe('posts:write')
    expect(decodeJwt(answer.json().access_token).claims.scope).toBe('posts:write')
    // Nor can the session's refresh give the admin scopes back.
    const refreshed = await tokenRequest(ctx.app, { grant_type: 'refresh_token', refresh_token: answer.json().refresh_token })
    expect(refreshed.json().scope).toBe('posts:write')
    const created = await ctx.app.inject({
      method: 'POST',
      url: '/clients',
      headers: bearer(refreshed.json().access_token),
      payload: { name: 'escalation', scopes: ['users:write'] }
    })
    expect(created.statusCode).toBe(403)
  })

  it('a user deactivated while their login is hashing gets no session', async () => {
    const owner = await adminWithToken(ctx.app)
    const target = await signup(ctx.app)
    const hold = holdNextVerification(ctx.app)
    const inFlight = passwordLogin(target.email)
    await hold.arrived
    await ctx.app.inject({ method: 'PATCH', url: `/users/${target.id}`, headers: owner.headers, payload: { is_active: false } })
    hold.release()

    const answer = await inFlight
    expect(answer.statusCode).toBe(400)
    expect(answer.json().error).toBe('invalid_grant')
    expect(await liveSessions(target.id)).toBe(0)
  })

  it('a login with the old password, hashing while the password changes, fails and leaves no session', async () => {
    const user = await userWithToken(ctx.app)
    const hold = holdNextVerification(ctx.app)
    const inFlight = passwordLogin(user.email, PASSWORD)
    await hold.arrived
    const changed = await ctx.app.inject({
      method: 'PUT',
      url: '/users/me/password',
      headers: user.headers,
      payload: { current_password: PASSWORD, new_password: 'the password after the change' }
    })
    expect(changed.statusCode).toBe(204)
    hold.release()

    const answer = await inFlight
    expect(answer.statusCode).toBe(400)
    expect(answer.json().error).toBe('invalid_grant')
    // Only the session that made the change is alive.
    expect(await liveSessions(user.id)).toBe(1)
    expect((await passwordLogin(user.email, PASSWORD)).statusCode).toBe(400)
    expect((await passwordLogin(user.email, 'the password after the change')).statusCode).toBe(200)
  })

  it('a deleted account’s login in flight gets no session', async () => {
    const user = await userWithToken(ctx.app)
    const hold = holdNextVerification(ctx.app)
    const inFlight = passwordLogin(user.email)
    await hold.arrived
    const deleted = await ctx.app.inject({ method: 'DELETE', url: '/users/me', headers: user.headers, payload: { current_password: PASSWORD } })
    expect(deleted.statusCode).toBe(204)
    hold.release()
    expect((await inFlight).json().error).toBe('invalid_grant')
    expect(await ctx.app.prisma.session.count({ where: { userId: user.id } })).toBe(0)
  })
})

describe('the upgrade of an old hash at login', () => {
  const upgrading = useApp({ ARGON2_TIME_COST: 3 })

  it('never writes the old password back over a password changed meanwhile', async () => {
    // The account's hash was made with weaker parameters (time cost 2): a login upgrades it.
    const user = await signup(ctx.app)
    const session = await login(upgrading.app, user.email)
    const again = await login(ctx.app, user.email)
    await ctx.app.prisma.user.update({
      where: { id: user.id },
      data: { passwordHash: await ctx.app.passwords.hash(PASSWORD) }
    })

    const hold = holdNextVerification(upgrading.app)
    const inFlight = tokenRequest(upgrading.app, { grant_type: 'password', username: user.email, password: PASSWORD })
    await hold.arrived
    const changed = await ctx.app.inject({
      method: 'PUT',
      url: '/users/me/password',
      headers: bearer(again.access_token),
      payload: { current_password: PASSWORD, new_password: 'the password after the change' }
    })
    expect(changed.statusCode).toBe(204)
    hold.release()
    expect((await inFlight).json().error).toBe('invalid_grant')

    // The old password stays dead; the new one works.
    expect((await passwordLogin(user.email, PASSWORD)).statusCode).toBe(400)
    expect((await passwordLogin(user.email, 'the password after the change')).statusCode).toBe(200)
    expect((await me(session.access_token)).statusCode).toBe(401)
  })
})

describe('a refresh waiting on a change of the account', () => {
  it('decides on the changed account: a deactivation that commits while the refresh waits for the row ends it', async () => {
    const user = await userWithToken(ctx.app)
    const client = new pg.Client({ connectionString: ctx.app.config.DATABASE_URL })
    await client.connect()
    try {
      // An account change in progress: the row is locked, the change not yet committed.
      await client.query('BEGIN')
      await client.query('UPDATE users SET is_active = false, security_version = security_version + 1 WHERE id = $1', [user.id])
      const refresh = tokenRequest(ctx.app, { grant_type: 'refresh_token', refresh_token: user.tokens.refresh_token ?? '' })
      // Whether or not the refresh reached the lock yet, it must see the commit.
      await new Promise((resolve) => setTimeout(resolve, 100))
      await client.query('COMMIT')
      const answer = await refresh
      expect(answer.statusCode).toBe(400)
      expect(answer.json().error).toBe('invalid_grant')
    } finally {
      await client.end()
    }
    expect(await liveSessions(user.id)).toBe(0)
  })
})
