// The client_credentials grant is answered from memory once a client is
// known, and a rotated secret or a deleted client stops authenticating on
// every instance as soon as the change commits: at once on the instance
// that made it, and on the others when the database's notification arrives
// (milliseconds), whoever made the change.
import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClientCredentials } from '../src/repositories/clients.js'
import { adminWithToken, basicAuth, buildApp, fileDatabase, serviceClient, tokenRequest, useApp } from './helper.js'

const ctx = useApp()
let other: FastifyInstance
let sql: pg.Client

beforeAll(async () => {
  other = await buildApp()
  sql = new pg.Client({ connectionString: (await fileDatabase()).url })
  await sql.connect()
})
afterAll(async () => {
  await other?.close()
  await sql?.end()
})

const grant = (app: FastifyInstance, clientId: string, secret: string) =>
  tokenRequest(app, { grant_type: 'client_credentials' }, { authorization: basicAuth(clientId, secret) })

const status = async (app: FastifyInstance, clientId: string, secret: string) => (await grant(app, clientId, secret)).statusCode

/** Polls until the other instance answers `expected` (it hears of changes within milliseconds). */
async function eventually(app: FastifyInstance, clientId: string, secret: string, expected: number) {
  await expect.poll(() => status(app, clientId, secret), { timeout: 2000, interval: 10 }).toBe(expected)
}

describe('the client_credentials grant', () => {
  it('needs no database query for a known client', async () => {
    const { clientId, clientSecret } = await serviceClient(ctx.app, ['users:read'])
    // An instance started after the client was made: no notification of its
    // making is still on its way to forget what the first grant remembers.
    const fresh = await buildApp()
    try {
      await expect.poll(() => fresh.notifications.listening, { timeout: 10_000 }).toBe(true)
      expect(await status(fresh, clientId, clientSecret)).toBe(200)

      // Another transaction holds the clients' tables: any query on them waits
      // (and shows as waiting in pg_stat_activity) until it ends.
      await sql.query('BEGIN')
      await sql.query('LOCK TABLE clients, client_secrets IN ACCESS EXCLUSIVE MODE')
      try {
        const waiting = async () => {
          const { rows } = await sql.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`
          )
          return rows[0]?.n ?? 0
        }
        const answers = Promise.all([grant(fresh, clientId, clientSecret), grant(fresh, clientId, `${clientSecret.slice(0, -2)}xx`)])
        const blocked = (async () => {
          while ((await waiting()) === 0) await new Promise((resolve) => setTimeout(resolve, 10))
          return 'a query waited for the clients table'
        })()
        const outcome = await Promise.race([answers, blocked])
        expect(outcome).not.toBe('a query waited for the clients table')
        expect((outcome as Awaited<typeof answers>).map((answer) => answer.statusCode)).toEqual([200, 401])
      } finally {
        await sql.query('ROLLBACK')
      }
    } finally {
      await fresh.close()
    }
  })

  it('refuses a rotated secret on every instance, and takes the new one', async () => {
    const admin = await adminWithToken(ctx.app)
    const { clientId, clientSecret } = await serviceClient(ctx.app, [])
    for (const app of [ctx.app, other]) expect(await status(app, clientId, clientSecret)).toBe(200)

    const rotated = await ctx.app.inject({ method: 'POST', url: `/clients/${clientId}/secret`, headers: admin.headers })
    expect(rotated.statusCode).toBe(200)
    const newSecret = rotated.json<{ client_secret: string }>().client_secret

    expect(await status(ctx.app, clientId, clientSecret)).toBe(401)
    expect(await status(ctx.app, clientId, newSecret)).toBe(200)
    await eventually(other, clientId, clientSecret, 401)
    expect(await status(other, clientId, newSecret)).toBe(200)
  })

  it('refuses a deleted client on every instance', async () => {
    const admin = await adminWithToken(ctx.app)
    const { clientId, clientSecret } = await serviceClient(ctx.app, [])
    for (const app of [ctx.app, other]) expect(await status(app, clientId, clientSecret)).toBe(200)

    expect((await ctx.app.inject({ method: 'DELETE', url: `/clients/${clientId}`, headers: admin.headers })).statusCode).toBe(204)
    expect(await status(ctx.app, clientId, clientSecret)).toBe(401)
    await eventually(other, clientId, clientSecret, 401)
  })

  it('refuses a secret revoked straight in the database on every instance', async () => {
    const { clientId, clientSecret } = await serviceClient(ctx.app, [])
    for (const app of [ctx.app, other]) expect(await status(app, clientId, clientSecret)).toBe(200)

    await sql.query('UPDATE client_secrets SET revoked_at = now() WHERE client_id = $1', [clientId])
    for (const app of [ctx.app, other]) await eventually(app, clientId, clientSecret, 401)
  })

  it('does not remember a lookup that raced with a change', async () => {
    const { clientId, clientSecret } = await serviceClient(ctx.app, [])
    const stale: ClientCredentials = {
      id: clientId,
      name: 'stale',
      scopes: [],
      grantTypes: ['client_credentials'],
      redirectUris: [],
      postLogoutRedirectUris: [],
      isPublic: false,
      firstParty: false,
      createdAt: new Date(),
      secrets: []
    }
    let finishLookup = (_client: ClientCredentials) => {}
    const lookup = ctx.app.clientCache.get(clientId, () => new Promise((resolve) => (finishLookup = resolve)))
    ctx.app.clientCache.forget(clientId)
    finishLookup(stale)
    expect(await lookup).toBe(stale)
    // The next grant reads the database instead of what that lookup saw (a client without secrets).
    expect(await status(ctx.app, clientId, clientSecret)).toBe(200)
  })
})
