// What a password login writes: its session, the session's first refresh
// token and the `login.success` audit event, together or not at all.
import { randomUUID } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { hashOpaqueToken } from '../src/lib/opaque-tokens.js'
import { decodeJwt, signup, tokenRequest, useApp } from './helper.js'

const ctx = useApp()

describe('a password login', () => {
  it('writes its session, first refresh token and audit event, with one time and the caller address', async () => {
    const user = await signup(ctx.app)
    const response = await tokenRequest(
      ctx.app,
      { grant_type: 'password', username: user.email, password: user.password },
      { 'user-agent': 'login-writes/1.0' },
      '192.0.2.44'
    )
    expect(response.statusCode).toBe(200)
    const body = response.json<{ access_token: string; refresh_token: string; scope: string }>()
    const sid = String(decodeJwt(body.access_token).claims.sid)

    const session = await ctx.app.prisma.session.findUniqueOrThrow({ where: { id: sid }, include: { refreshTokens: true } })
    expect(session).toMatchObject({ userId: user.id, clientId: 'public', securityVersion: 1, scope: body.scope, endedAt: null, endReason: null })
    expect(session.lastUsedAt).toEqual(session.createdAt)
    expect(session.expiresAt.getTime() - session.createdAt.getTime()).toBe(ctx.app.config.SESSION_MAX_AGE * 1000)
    expect(session.refreshTokens).toEqual([
      expect.objectContaining({ tokenHash: hashOpaqueToken(body.refresh_token), generation: 0, spentAt: null, createdAt: session.createdAt })
    ])

    const events = await ctx.app.prisma.auditEvent.findMany({ where: { sessionId: sid } })
    expect(events).toEqual([
      expect.objectContaining({
        kind: 'login.success',
        userId: user.id,
        clientId: null,
        ip: '192.0.2.44',
        userAgent: 'login-writes/1.0',
        details: null,
        createdAt: session.createdAt
      })
    ])
  })

  it('leaves nothing behind when its session cannot be written', async () => {
    const counts = () =>
      Promise.all([ctx.app.prisma.session.count(), ctx.app.prisma.refreshToken.count(), ctx.app.prisma.auditEvent.count()])
    const before = await counts()
    // An account deleted between the password check and the session write: nothing is written.
    const session = await ctx.app.sessionsRepository.start(
      { userId: randomUUID(), securityVersion: 1, clientId: 'public', scope: 'posts:write', amr: ['pwd'] },
      { ip: '192.0.2.1', userAgent: null }
    )
    expect(session).toBeUndefined()
    expect(await counts()).toEqual(before)
  })
})
