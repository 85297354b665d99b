// Service clients: management, the client-credentials grant, scopes, and
// revocation through secret rotation and deletion.
import { describe, expect, it } from 'vitest'
import { adminWithToken, basicAuth, bearer, decodeJwt, serviceClient, tokenRequest, useApp, userWithToken } from './helper.js'

const ctx = useApp()

async function clientToken(clientId: string, clientSecret: string, scope?: string) {
  return tokenRequest(
    ctx.app,
    { grant_type: 'client_credentials', ...(scope ? { scope } : {}) },
    { authorization: basicAuth(clientId, clientSecret) }
  )
}

describe('managing clients', () => {
  it('an admin registers a client and sees its secret once', async () => {
    const admin = await adminWithToken(ctx.app)
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/clients',
      headers: admin.headers,
      payload: { name: 'billing', scopes: ['users:read'] }
    })
    expect(response.statusCode).toBe(201)
    const client = response.json()
    expect(client).toEqual({
      client_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      client_secret: expect.stringMatching(/^bapi_cs_[A-Za-z0-9_-]{43}$/),
      name: 'billing',
      scopes: ['users:read'],
      grant_types: ['client_credentials'],
      redirect_uris: [],
      post_logout_redirect_uris: [],
      public: false,
      first_party: false,
      created_at: expect.any(String)
    })
    const stored = await ctx.app.prisma.clientSecret.findFirstOrThrow({ where: { clientId: client.client_id } })
    expect(stored.secretHash).not.toContain(client.client_secret)

    const list = await ctx.app.inject({ method: 'GET', url: '/clients?limit=100', headers: admin.headers })
    expect(list.statusCode).toBe(200)
    expect(list.body).not.toContain('bapi_cs_')
    const { client_secret: _secret, ...listed } = client
    expect(list.json().data).toContainEqual(listed)
  })

  it('a user without clients:manage cannot manage clients', async () => {
    const user = await userWithToken(ctx.app)
    for (const [method, url] of [
      ['POST', '/clients'],
      ['GET', '/clients'],
      ['POST', '/clients/00000000-0000-4000-8000-000000000000/secret'],
      ['DELETE', '/clients/00000000-0000-4000-8000-000000000000']
    ] as const) {
      const response = await ctx.app.inject({ method, url, headers: user.headers, payload: method === 'POST' ? { name: 'x', scopes: [] } : undefined })
      expect(response.statusCode).toBe(403)
      expect(response.headers['www-authenticate']).toContain('scope="clients:manage"')
    }
  })

  it('refuses scopes a service client cannot hold', async () => {
    const admin = await adminWithToken(ctx.app)
    const response = await ctx.app.inject({ method: 'POST', url: '/clients', headers: admin.headers, payload: { name: 'x', scopes: ['posts:write'] } })
    expect(response.statusCode).toBe(400)
  })

  it('rotating or deleting an unknown client is 404', async () => {
    const admin = await adminWithToken(ctx.app)
    const unknown = '00000000-0000-4000-8000-000000000000'
    expect((await ctx.app.inject({ method: 'POST', url: `/clients/${unknown}/secret`, headers: admin.headers })).statusCode).toBe(404)
    expect((await ctx.app.inject({ method: 'DELETE', url: `/clients/${unknown}`, headers: admin.headers })).statusCode).toBe(404)
  })
})

describe('client credentials grant', () => {
  it('a client logs in with HTTP Basic and calls a users:read route', async () => {
    const client = await serviceClient(ctx.app, ['users:read'])
    const response = await clientToken(client.clientId, client.clientSecret)
    expect(response.statusCode).toBe(200)
    expect(response.headers['cache-control']).toBe('no-store')
    const body = response.json()
    expect(body).toEqual({ access_token: expect.any(String), token_type: 'bearer', expires_in: 900, scope: 'users:read' })
    expect(body).not.toHaveProperty('refresh_token')
    const { claims } = decodeJwt(body.access_token)
    expect(claims.sub).toBe(client.clientId)
    expect(claims.client_id).toBe(client.clientId)
    const users = await ctx.app.inject({ method: 'GET', url: '/users', headers: bearer(body.access_token) })
    expect(users.statusCode).toBe(200)
    expect(users.json()).toEqual({ data: expect.any(Array), next_cursor: expect.toSatisfy((v: unknown) => v === null || typeof v === 'string') })
  })

  it('credentials in the body work too', async () => {
    const client = await serviceClient(ctx.app, ['users:read'])
    const response = await tokenRequest(ctx.app, { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret })
    expect(response.statusCode).toBe(200)
  })

  it('a client cannot call a route outside its scopes', async () => {
    const client = await serviceClient(ctx.app, ['users:read'])
    const token = (await clientToken(client.clientId, client.clientSecret)).json().access_token
    const response = await ctx.app.inject({ method: 'PATCH', url: '/users/00000000-0000-4000-8000-000000000000', headers: bearer(token), payload: { is_active: false } })
    expect(response.statusCode).toBe(403)
    expect(response.headers['www-authenticate']).toContain('error="insufficient_scope"')
    const posting = await ctx.app.inject({ method: 'POST', url: '/posts', headers: bearer(token), payload: { title: 'x', content: 'y' } })
    expect(posting.statusCode).toBe(403)
  })

  it('narrows to the scopes asked for, and refuses one it does not hold with invalid_scope', async () => {
    const client = await serviceClient(ctx.app, ['users:read', 'users:write'])
    const narrowed = await clientToken(client.clientId, client.clientSecret, 'users:read')
    expect(narrowed.json().scope).toBe('users:read')
    const refused = await clientToken(client.clientId, client.clientSecret, 'clients:manage')
    expect(refused.statusCode).toBe(400)
    expect(refused.json().error).toBe('invalid_scope')
  })

  it('bad credentials are 401 invalid_client, with a Basic challenge when Basic was used', async () => {
    const client = await serviceClient(ctx.app, ['users:read'])
    const wrong = await clientToken(client.clientId, 'bapi_cs_wrong')
    expect(wrong.statusCode).toBe(401)
    expect(wrong.json().error).toBe('invalid_client')
    expect(wrong.headers['www-authenticate']).toMatch(/^Basic realm=/)
    const unknown = await clientToken('not-a-client', 'whatever')
    expect(unknown.statusCode).toBe(401)
    expect(unknown.body).toBe(wrong.body)
    const inBody = await tokenRequest(ctx.app, { grant_type: 'client_credentials', client_id: client.clientId, client_secret: 'nope' })
    expect(inBody.statusCode).toBe(401)
    expect(inBody.headers['www-authenticate']).toBeUndefined()
    const none = await tokenRequest(ctx.app, { grant_type: 'client_credentials' })
    expect(none.statusCode).toBe(401)
    expect(none.json().error).toBe('invalid_client')
  })

  it('credentials sent both ways at once are invalid_request', async () => {
    const client = await serviceClient(ctx.app, ['users:read'])
    const response = await tokenRequest(
      ctx.app,
      { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret },
      { authorization: basicAuth(client.clientId, client.clientSecret) }
    )
    expect(response.statusCode).toBe(400)
    expect(response.json().error).toBe('invalid_request')
  })
})

describe('revoking clients', () => {
  it('a rotated secret stops working, and so do tokens minted with it', async () => {
    const admin = await adminWithToken(ctx.app)
    const client = await serviceClient(ctx.app, ['users:read'])
    const oldToken = (await clientToken(client.clientId, client.clientSecret)).json().access_token
    const rotated = await ctx.app.inject({ method: 'POST', url: `/clients/${client.clientId}/secret`, headers: admin.headers })
    expect(rotated.statusCode).toBe(200)
    const { client_secret: newSecret } = rotated.json()
    expect(newSecret).not.toBe(client.clientSecret)
    expect((await clientToken(client.clientId, client.clientSecret)).statusCode).toBe(401)
    expect((await ctx.app.inject({ method: 'GET', url: '/users', headers: bearer(oldToken) })).statusCode).toBe(401)
    const fresh = await clientToken(client.clientId, newSecret)
    expect(fresh.statusCode).toBe(200)
    expect((await ctx.app.inject({ method: 'GET', url: '/users', headers: bearer(fresh.json().access_token) })).statusCode).toBe(200)
  })

  it('a deleted client and its tokens are refused', async () => {
    const admin = await adminWithToken(ctx.app)
    const client = await serviceClient(ctx.app, ['users:read'])
    const token = (await clientToken(client.clientId, client.clientSecret)).json().access_token
    const deleted = await ctx.app.inject({ method: 'DELETE', url: `/clients/${client.clientId}`, headers: admin.headers })
    expect(deleted.statusCode).toBe(204)
    expect((await clientToken(client.clientId, client.clientSecret)).statusCode).toBe(401)
    expect((await ctx.app.inject({ method: 'GET', url: '/users', headers: bearer(token) })).statusCode).toBe(401)
  })

  it('a client that logs out revokes only the token it presented', async () => {
    const client = await serviceClient(ctx.app, ['users:read'])
    const first = (await clientToken(client.clientId, client.clientSecret)).json().access_token
    const second = (await clientToken(client.clientId, client.clientSecret)).json().access_token
    expect((await ctx.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(first) })).statusCode).toBe(204)
    expect((await ctx.app.inject({ method: 'GET', url: '/users', headers: bearer(first) })).statusCode).toBe(401)
    expect((await ctx.app.inject({ method: 'GET', url: '/users', headers: bearer(second) })).statusCode).toBe(200)
  })
})
