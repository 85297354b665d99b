// Builds the app for a test exactly as the server does (minus `listen`), on a
// database of the test file's own, with a real SMTP server of the file's own as
// its mail server, and closes them afterwards. Also the small steps most tests
// share: sign up, log in, make an admin, a service client.
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import { afterAll, beforeAll } from 'vitest'
import app, { serverOptions } from '../src/app.js'
import { type Config, loadConfig } from '../src/config.js'
import { type Registration, serviceRegistration } from '../src/oauth/clients.js'
import type { PasswordManager } from '../src/plugins/app/passwords.js'
import { createTestDatabase } from './database.js'
import { type Mailbox, startMailbox } from './mailbox.js'

// One signing key, one HMAC secret and one encryption key for the whole file: real Ed25519 signatures, real HMACs, real AES-GCM.
export const TEST_PRIVATE_KEY = generateKeyPairSync('ed25519')
  .privateKey.export({ format: 'pem', type: 'pkcs8' })
  .toString()
export const TEST_APP_SECRET = randomBytes(48).toString('base64url')
export const TEST_MFA_KEY = randomBytes(32).toString('base64')

let database: Promise<{ url: string; drop(): Promise<void> }> | undefined

/** This file's database, created on first use and dropped after the file. */
export function fileDatabase() {
  if (!database) {
    database = createTestDatabase()
    afterAll(async () => {
      await (await database)?.drop()
    })
    // Every app of the file sends mail there: started (and its closing registered) with the database.
    void fileMailbox()
  }
  return database
}

let mailbox: Promise<Mailbox> | undefined

/** This file's mail server (every app of the file sends to it unless told otherwise), closed after the file. */
export function fileMailbox() {
  if (!mailbox) {
    mailbox = startMailbox()
    afterAll(async () => {
      await (await mailbox)?.close()
    })
  }
  return mailbox
}

export const MAIL_FROM = 'Blog API <no-reply@blog.example>'

export async function testConfig(overrides: Partial<Config> = {}): Promise<Config> {
  const { url } = await fileDatabase()
  const mail = await fileMailbox()
  return loadConfig(
    {
      DATABASE_URL: url,
      MAIL_URL: mail.url,
      MAIL_FROM,
      LOG_LEVEL: 'silent',
      JWT_PRIVATE_KEY: TEST_PRIVATE_KEY,
      APP_SECRET: TEST_APP_SECRET,
      MFA_ENCRYPTION_KEY: TEST_MFA_KEY,
      // Real argon2id, with parameters cheap enough for a test suite.
      ARGON2_MEMORY_KIB: '4096',
      ARGON2_TIME_COST: '2',
      ARGON2_PARALLELISM: '1',
      // Every limit and lockout at its default: raised limits hide bugs in limits.
      // Simulated clients come from addresses of their own instead (clientAddress()).
      // Load shedding on event-loop delay measures the machine, not the service: on a
      // CI box running many test processes on two cores, an app's start alone can
      // block its loop past the threshold and shed the next request. Its own tests
      // (under-pressure.test.ts) set it explicitly.
      PRESSURE_MAX_EVENT_LOOP_DELAY: '0',
      // Hashes under SCHED_IDLE run only when no other process wants the CPU: on a
      // CI box running many test files at once, a test's logins would wait for all
      // of them. The policy itself is tested in password-hashing.test.ts.
      ARGON2_IDLE_SCHEDULING: 'false',
      DATABASE_POOL_SIZE: '5'
    },
    overrides
  )
}

/** Builds and readies an app; the caller closes it. */
export async function buildApp(overrides: Partial<Config> = {}, fastifyOptions = {}): Promise<FastifyInstance> {
  const config = await testConfig(overrides)
  const fastify = Fastify({ ...serverOptions(config), ...fastifyOptions })
  try {
    await fastify.register(app, { config })
    await fastify.ready()
  } catch (error) {
    // An app that fails to start still closes what it opened.
    await fastify.close().catch(() => undefined)
    throw error
  }
  return fastify
}

/**
 * An app for every test of the enclosing file or `describe`, built before
 * them and closed after them.
 */
export function useApp(overrides: Partial<Config> = {}) {
  const context = {} as { app: FastifyInstance }
  void fileDatabase()
  beforeAll(async () => {
    context.app = await buildApp(overrides)
  })
  afterAll(async () => {
    await context.app?.close()
  })
  return context
}

export const uniqueEmail = (label = 'user') => `${label}-${randomUUID().slice(0, 8)}@example.com`

/**
 * An address of a client of its own: the limits stay at their defaults, and
 * each simulated client is counted apart, as separate people would be.
 */
export const clientAddress = () => `10.${randomBytes(3).join('.')}`
export const PASSWORD = 'correct horse battery staple'

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

export interface TokenAnswer {
  access_token: string
  refresh_token?: string
  token_type: string
  expires_in: number
  scope: string
}

export async function signup(fastify: FastifyInstance, input: { email?: string; password?: string; full_name?: string } = {}) {
  const body = { email: input.email ?? uniqueEmail(), full_name: input.full_name ?? 'Test User', password: input.password ?? PASSWORD }
  const response = await fastify.inject({ method: 'POST', url: '/auth/signup', payload: body, remoteAddress: clientAddress() })
  if (response.statusCode !== 201) throw new Error(`signup failed: ${response.statusCode} ${response.body}`)
  return { ...response.json<{ id: string; email: string }>(), password: body.password }
}

/** A form-encoded token request, as an OAuth2 client sends it. */
export function tokenRequest(
  fastify: FastifyInstance,
  form: Record<string, string>,
  headers: Record<string, string> = {},
  remoteAddress = clientAddress()
): Promise<LightMyRequestResponse> {
  return fastify.inject({
    method: 'POST',
    url: '/auth/token',
    remoteAddress,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    payload: new URLSearchParams(form).toString()
  })
}

export async function login(fastify: FastifyInstance, email: string, password = PASSWORD, scope?: string) {
  const response = await tokenRequest(fastify, { grant_type: 'password', username: email, password, ...(scope ? { scope } : {}) })
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`)
  return response.json<TokenAnswer>()
}

/** A signed-up, logged-in user. */
export async function userWithToken(fastify: FastifyInstance, input: { email?: string; full_name?: string } = {}) {
  const user = await signup(fastify, input)
  const tokens = await login(fastify, user.email)
  return { ...user, tokens, headers: bearer(tokens.access_token) }
}

/** A logged-in admin (signed up, then promoted directly in the database). */
export async function adminWithToken(fastify: FastifyInstance) {
  const user = await signup(fastify, { email: uniqueEmail('admin'), full_name: 'Admin' })
  await fastify.prisma.user.update({ where: { id: user.id }, data: { role: 'admin' } })
  const tokens = await login(fastify, user.email)
  return { ...user, tokens, headers: bearer(tokens.access_token) }
}

/** A registered service client with the given scopes, and its credentials. */
export async function serviceClient(fastify: FastifyInstance, scopes: string[], registration: Partial<Registration> = {}) {
  const client = await fastify.clientsRepository.create({
    name: `svc-${randomUUID().slice(0, 6)}`,
    ...serviceRegistration(scopes),
    ...registration
  })
  return { clientId: client.client_id, clientSecret: client.client_secret ?? '' }
}

/** A registered app that users sign in to (authorization code with PKCE), public unless said otherwise. */
export async function appClient(fastify: FastifyInstance, registration: Partial<Registration> = {}) {
  const isPublic = registration.isPublic ?? true
  const client = await fastify.clientsRepository.create({
    name: `app-${randomUUID().slice(0, 6)}`,
    scopes: ['openid', 'profile', 'email', 'posts:write'],
    grantTypes: ['authorization_code', 'refresh_token'],
    redirectUris: ['https://app.example.com/callback'],
    postLogoutRedirectUris: ['https://app.example.com/signed-out'],
    firstParty: false,
    ...registration,
    isPublic
  })
  return { clientId: client.client_id, clientSecret: client.client_secret, name: client.name, redirectUri: client.redirect_uris[0] ?? '' }
}

export const basicAuth = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`

/** Asserts nothing; decodes a JWT's header and claims for inspection. */
export function decodeJwt(token: string) {
  const [header, payload] = token.split('.')
  return {
    header: JSON.parse(Buffer.from(header ?? '', 'base64url').toString()) as Record<string, unknown>,
    claims: JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as Record<string, unknown>
  }
}

/**
 * Holds the next password verification once argon2 has answered: `arrived`
 * resolves when a login is waiting there, `release` lets it go on. A race
 * made deterministic: a change of the account lands exactly in the window an
 * attacker aims at, between the password check and the session's write.
 */
export function holdNextVerification(fastify: FastifyInstance) {
  const manager: PasswordManager = fastify.passwords
  const original = manager.verify.bind(manager)
  let release = () => {}
  let arrive = () => {}
  const gate = new Promise<void>((resolve) => (release = resolve))
  const arrived = new Promise<void>((resolve) => (arrive = resolve))
  manager.verify = async (...args) => {
    manager.verify = original
    const result = await original(...args)
    arrive()
    await gate
    return result
  }
  return { arrived, release }
}
