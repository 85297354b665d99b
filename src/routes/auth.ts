// Accounts and tokens: signup, the OAuth2 token endpoint (password,
// refresh_token and client_credentials grants), RFC 7009 revocation, logout.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { badRequest, clientClosedRequest, OAuthError, ProblemError } from '../lib/errors.js'
import { REFRESH_TOKEN_PREFIX } from '../lib/opaque-tokens.js'
import type { Principal } from '../plugins/infra/jwt.js'
import { grantScopes, parseScope, scopesForRole } from '../lib/scopes.js'
import { OAuthErrorResponse, RevokeBody, TokenBody, TokenResponse } from '../schemas/auth.js'
import { NoContent, problems, refTo } from '../schemas/common.js'
import { SignupBody, User } from '../schemas/users.js'
import { trimFields } from '../lib/trim.js'
import { auditActor, auditSource } from '../repositories/audit.js'

/** Password logins without client authentication are made by this public client. */
export const PUBLIC_CLIENT_ID = 'public'

interface ClientCredentials {
  clientId: string
  clientSecret: string
  viaBasic: boolean
}

/**
 * The client credentials of a token request (RFC 6749 §2.3.1): HTTP Basic
 * with form-encoded id and secret, or `client_id`/`client_secret` in the
 * body, never both. An empty Basic pair (as API consoles such as Swagger UI
 * send for public clients) counts as none.
 */
function clientCredentials(request: FastifyRequest, body: { client_id?: string; client_secret?: string }) {
  const header = request.headers.authorization
  let basic: ClientCredentials | undefined
  if (header && /^Basic /i.test(header)) {
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8')
    const separator = decoded.indexOf(':')
    if (separator < 0) throw new OAuthError('invalid_client', 'Malformed HTTP Basic credentials.', { basicChallenge: true })
    try {
      basic = {
        clientId: decodeURIComponent(decoded.slice(0, separator).replace(/\+/g, ' ')),
        clientSecret: decodeURIComponent(decoded.slice(separator + 1).replace(/\+/g, ' ')),
        viaBasic: true
      }
    } catch {
      throw new OAuthError('invalid_client', 'Malformed HTTP Basic credentials.', { basicChallenge: true })
    }
    // The public client has no secret: naming it is the same as sending nothing.
    if (!basic.clientSecret && (!basic.clientId || basic.clientId === PUBLIC_CLIENT_ID)) basic = undefined
  }
  const inBody = body.client_secret !== undefined
  if (basic && (inBody || body.client_id)) {
    throw new OAuthError('invalid_request', 'Send client credentials with HTTP Basic or in the body, not both.')
  }
  if (basic) return basic
  if (inBody) return { clientId: body.client_id ?? '', clientSecret: body.client_secret ?? '', viaBasic: false }
  return undefined
}

/**
 * Aborts when the client closes the connection before its answer is sent: a
 * password hash still waiting for its turn is then not computed (a flood of
 * logins whose clients gave up would otherwise delay every later one). The
 * attempt still counts towards the account's lockout.
 */
function whileClientWaits(reply: FastifyReply): AbortSignal {
  const controller = new AbortController()
  const gone = () => controller.abort(clientClosedRequest())
  // Gone already (while the body was read or the account looked up), or later.
  if (reply.raw.socket?.destroyed === true) gone()
  else {
    reply.raw.once('close', () => {
      if (!reply.raw.writableEnded) gone()
    })
  }
  return controller.signal
}

const tokenDescription = `The OAuth2 token endpoint (RFC 6749). Send \`application/x-www-form-urlencoded\` (JSON is accepted too).

- \`grant_type=password\`: \`username\` (the email), \`password\`, optional \`scope\` → access and refresh token.
- \`grant_type=refresh_token\`: \`refresh_token\`, optional narrower \`scope\` → a new access token and a **new** refresh token; the old one is spent, and presenting it again ends the session.
- \`grant_type=client_credentials\`: client authentication (HTTP Basic or \`client_id\`/\`client_secret\`), optional \`scope\` → access token only.`

const authRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { usersRepository: users, sessionsRepository: sessions, clientsRepository: clients, auditLog } = fastify
  const { passwords, tokens, config, loginThrottle } = fastify
  const rateLimit = { max: config.AUTH_RATE_LIMIT_MAX, timeWindow: config.AUTH_RATE_LIMIT_WINDOW * 1000 }

  // What an operator pages on: a wave of failures or lockouts is a guessing
  // attack; any refresh-token reuse is a stolen token (or a client bug).
  const logins = fastify.metrics.counter({
    name: 'blog_api_logins_total',
    help: 'Password logins by outcome: success; failure (wrong email or password, or inactive account); locked (refused while the email is locked out); unavailable (the lockout store is down).',
    labelNames: ['outcome']
  })
  // Every outcome is exported from the start (at 0), so rates over it exist before the first of each.
  for (const outcome of ['success', 'failure', 'locked', 'unavailable']) logins.inc({ outcome }, 0)
  const lockouts = fastify.metrics.counter({
    name: 'blog_api_login_lockouts_total',
    help: 'Failed logins that locked their email out (a first lockout, or a doubling of one).'
  })
  const refreshReuse = fastify.metrics.counter({
    name: 'blog_api_refresh_token_reuse_total',
    help: 'Spent refresh tokens presented again; each ended its session as stolen.'
  })

  /** A user's token ends its whole session; a service client's token is revoked alone. */
  const endCallerSession = (principal: Principal, reason: 'logout' | 'revoked') =>
    principal.kind === 'user' ? sessions.end(principal.sessionId, reason) : sessions.revokeToken(principal.tokenId)

  fastify.post(
    '/auth/signup',
    {
      config: { rateLimit },
      preValidation: trimFields(['email', 'full_name']),
      schema: {
        tags: ['Accounts'],
        operationId: 'signup',
        summary: 'Create an account',
        description:
          'Creates a user account with the `user` role. The email is stored lower-cased; the password must have at least `PASSWORD_MIN_LENGTH` characters (12 by default). Then log in with the token endpoint.',
        body: SignupBody,
        response: {
          201: refTo(User, 'The new account.', {
            headers: { Location: { type: 'string', description: 'The path of the new account.' } }
          }),
          ...problems({ 400: 'Invalid body or weak password', 409: 'The email is taken', 429: 'Too many attempts' })
        }
      }
    },
    async (request, reply) => {
      const { email, full_name: fullName, password } = request.body
      const weak = passwords.policyErrors(password, 'password', email)
      if (weak.length > 0) throw badRequest('The password does not meet the policy.', weak)
      const user = await users.create({ email, fullName, passwordHash: await passwords.hash(password, whileClientWaits(reply)) })
      await auditLog.record('user.signup', request, { userId: user.id })
      return reply.code(201).header('location', `/users/${user.id}`).send(user)
    }
  )

  fastify.post(
    '/auth/token',
    {
      config: { oauthErrors: true, rateLimit },
      schema: {
        tags: ['Accounts'],
        operationId: 'token',
        summary: 'Get tokens (OAuth2 token endpoint)',
        description: tokenDescription,
        consumes: ['application/x-www-form-urlencoded', 'application/json'],
        body: TokenBody,
        response: {
          200: TokenResponse,
          400: {
            ...OAuthErrorResponse,
            description:
              'RFC 6749 error: `invalid_request`, `invalid_grant` (wrong email or password, spent or unknown refresh token), `unsupported_grant_type` or `invalid_scope`.'
          },
          401: {
            ...OAuthErrorResponse,
            description: '`invalid_client`: client authentication failed (with a Basic challenge when Basic was used).',
            examples: [{ error: 'invalid_client', error_description: 'Client authentication failed.' }],
            headers: { 'WWW-Authenticate': { type: 'string', description: 'A Basic challenge, when the client used HTTP Basic.' } }
          },
          ...problems({
            429: 'Too many requests from this address, or too many failed logins for this email: problem details and `Retry-After`',
            503: 'Temporarily unavailable'
          })
        }
      }
    },
    async (request, reply) => {
      const body = request.body
      const credentials = clientCredentials(request, body)
      let client: Awaited<ReturnType<typeof clients.authenticate>>
      if (credentials) {
        client = await clients.authenticate(credentials.clientId, credentials.clientSecret)
        if (!client) {
          await auditLog.record('client.failure', request, { details: { attempted_client_id: credentials.clientId.slice(0, 100) } })
          throw new OAuthError('invalid_client', 'Client authentication failed.', { basicChallenge: credentials.viaBasic })
        }
      }
      reply.header('cache-control', 'no-store').header('pragma', 'no-cache')

      switch (body.grant_type) {
        case 'password': {
          if (!body.username || body.password === undefined) {
            throw new OAuthError('invalid_request', 'The password grant needs "username" and "password".')
          }
          // Before any lookup or verification: a locked-out email costs the attacker nothing but a 429.
          const lockSeconds = await loginThrottle.attempt(body.username).catch((error: unknown) => {
            logins.inc({ outcome: error instanceof ProblemError && error.statusCode === 429 ? 'locked' : 'unavailable' })
            throw error
          })
          const account = await users.findCredentials(body.username)
          const check = await passwords.verify(account?.passwordHash, body.password, whileClientWaits(reply))
          if (!account || !check.valid || !account.isActive) {
            logins.inc({ outcome: 'failure' })
            await auditLog.record('login.failure', request, { userId: account?.id })
            if (lockSeconds > 0) {
              lockouts.inc()
              await auditLog.record('login.locked', request, { userId: account?.id, details: { lock_seconds: lockSeconds } })
            }
            throw new OAuthError('invalid_grant', 'The email or password is incorrect.')
          }
          await loginThrottle.succeeded(body.username)
          logins.inc({ outcome: 'success' })
          const scope = grantScopes(body.scope, scopesForRole(account.role))
          if (check.needsRehash) await users.rehash(account.id, await passwords.hash(body.password))
          // Records `login.success` with the session, in the same statement.
          const session = await sessions.start(account.id, scope, auditSource(request))
          const access = tokens.issueAccessToken({
            sub: account.id,
            clientId: client?.clientId ?? PUBLIC_CLIENT_ID,
            scope,
            sid: session.sessionId
          })
          return {
            access_token: access.accessToken,
            token_type: 'bearer' as const,
            expires_in: access.expiresIn,
            refresh_token: session.refreshToken,
            scope
          }
        }

        case 'refresh_token': {
          if (!body.refresh_token) throw new OAuthError('invalid_request', 'The refresh_token grant needs "refresh_token".')
          const result = await sessions.rotate(body.refresh_token, parseScope(body.scope))
          if (result.outcome === 'reused') {
            refreshReuse.inc()
            await auditLog.record('refresh_token.reuse', request, { userId: result.userId, sessionId: result.sessionId })
          }
          if (result.outcome !== 'rotated') {
            throw new OAuthError('invalid_grant', 'The refresh token is invalid, expired or revoked.')
          }
          await auditLog.record('token.refresh', request, { userId: result.userId, sessionId: result.sessionId })
          const access = tokens.issueAccessToken({
            sub: result.userId,
            clientId: client?.clientId ?? PUBLIC_CLIENT_ID,
            scope: result.scope,
            sid: result.sessionId
          })
          return {
            access_token: access.accessToken,
            token_type: 'bearer' as const,
            expires_in: access.expiresIn,
            refresh_token: result.refreshToken,
            scope: result.scope
          }
        }

        case 'client_credentials': {
          if (!client) {
            throw new OAuthError('invalid_client', 'The client_credentials grant needs client authentication.', {
              basicChallenge: true
            })
          }
          const scope = grantScopes(body.scope, client.scopes)
          await auditLog.record('client.token', request, { clientId: client.clientId })
          const access = tokens.issueAccessToken({
            sub: client.clientId,
            clientId: client.clientId,
            scope,
            sid: client.secretId
          })
          return { access_token: access.accessToken, token_type: 'bearer' as const, expires_in: access.expiresIn, scope }
        }

        default:
          throw new OAuthError('unsupported_grant_type', `The grant type "${body.grant_type}" is not supported.`)
      }
    }
  )

  fastify.post(
    '/auth/revoke',
    {
      config: { oauthErrors: true, rateLimit },
      schema: {
        tags: ['Accounts'],
        operationId: 'revoke',
        summary: 'Revoke a token (RFC 7009)',
        description:
          'Revokes a refresh token or an access token. For a user, the whole session ends: its refresh token and every access token it produced. Answers 200 whether or not the token was valid, so it tells nothing about tokens.',
        consumes: ['application/x-www-form-urlencoded', 'application/json'],
        body: RevokeBody,
        response: {
          200: NoContent('Revoked, or nothing to revoke (the answer is the same).'),
          400: {
            ...OAuthErrorResponse,
            description: '`invalid_request`: no `token`.',
            examples: [{ error: 'invalid_request', error_description: 'Invalid or missing parameter: token.' }]
          },
          ...problems({ 429: 'Too many attempts' })
        }
      }
    },
    async (request, reply) => {
      const { token } = request.body
      reply.header('cache-control', 'no-store')
      if (token.startsWith(REFRESH_TOKEN_PREFIX)) {
        const session = await sessions.findByRefreshToken(token)
        if (session) {
          await sessions.end(session.id, 'revoked')
          await auditLog.record('session.revoked', request, { userId: session.userId, sessionId: session.id })
        }
        return reply.code(200).send()
      }
      const principal = tokens.verifyAccessToken(token)
      if (principal) {
        await endCallerSession(principal, 'revoked')
        await auditLog.record('session.revoked', request, auditActor(principal))
      }
      return reply.code(200).send()
    }
  )

  fastify.post(
    '/auth/logout',
    {
      onRequest: [fastify.authenticate],
      schema: {
        tags: ['Accounts'],
        operationId: 'logout',
        summary: 'Log out',
        description:
          "Ends the caller's session: its refresh token and every access token it produced stop working at once. For a service client, the presented token is revoked.",
        security: [{ oauth2: [] }],
        response: { 204: NoContent('Logged out.'), ...problems({ 401: 'Missing, invalid or revoked token' }) }
      }
    },
    async (request, reply) => {
      await endCallerSession(request.user, 'logout')
      await auditLog.record('session.logout', request, auditActor(request.user))
      return reply.code(204).send()
    }
  )
}

export default authRoutes
