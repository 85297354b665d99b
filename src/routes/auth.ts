// Accounts and tokens: signup, the OAuth2 token endpoint (password,
// refresh_token, client_credentials and mfa-otp grants), RFC 7009
// revocation, logout.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { OAuthError } from '../lib/errors.js'
import { REFRESH_TOKEN_PREFIX } from '../lib/opaque-tokens.js'
import { requestingClient } from '../oauth/client-auth.js'
import { GRANTS } from '../oauth/grants/index.js'
import { signUp } from '../oauth/sign-up.js'
import type { Principal } from '../plugins/infra/jwt.js'
import { MfaRequiredResponse, OAuthErrorResponse, RevokeBody, TokenBody, TokenResponse } from '../schemas/auth.js'
import { NoContent, problems, refTo } from '../schemas/common.js'
import { SignupBody, User } from '../schemas/users.js'
import { trimFields } from '../lib/trim.js'
import { auditActor } from '../repositories/audit.js'

const tokenDescription = `The OAuth2 token endpoint (RFC 6749). Send \`application/x-www-form-urlencoded\` (JSON is accepted too).

- \`grant_type=password\`: \`username\` (the email), \`password\`, optional \`scope\` → access and refresh token. For an account with MFA, a right password answers **403** \`mfa_required\` with an \`mfa_token\` instead.
- \`grant_type=urn:blog-api:grant-type:mfa-otp\`: \`mfa_token\` (from the \`mfa_required\` answer, same client, within 5 minutes) and \`otp\` (the authenticator's current code, or an unused recovery code) → access and refresh token. Each code works once; five wrong codes end the \`mfa_token\`, and wrong codes count towards the account's lockout like wrong passwords.
- \`grant_type=refresh_token\`: \`refresh_token\`, optional narrower \`scope\` → a new access token and a **new** refresh token; the old one is spent. Only the client the token was issued to may redeem it (authenticated, if confidential). A retry of the latest refresh within \`REFRESH_REUSE_GRACE\` seconds gets the same new refresh token again; presenting an older one ends the session.
- \`grant_type=client_credentials\`: client authentication (HTTP Basic or \`client_id\`/\`client_secret\`), optional \`scope\` → access token only.`

const authRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { sessionsRepository: sessions, clientsRepository: clients, auditLog } = fastify
  const { tokens, config } = fastify
  const rateLimit = { max: config.AUTH_RATE_LIMIT_MAX, timeWindow: config.AUTH_RATE_LIMIT_WINDOW * 1000 }

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
          'Creates a user account with the `user` role. The email is stored lower-cased; the password must have at least `PASSWORD_MIN_LENGTH` characters (12 by default). A link to verify the email goes to it (unless the service sends no email). Then log in with the token endpoint.',
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
      const user = await signUp(request, reply, { email, fullName, password })
      // The account is personal data: no cache keeps it.
      return reply.code(201).header('location', `/users/${user.id}`).header('cache-control', 'no-store').send(user)
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
              'RFC 6749 error: `invalid_request`, `invalid_grant` (wrong email or password, spent or unknown refresh token, wrong or used code, invalid or expired `mfa_token`), `unsupported_grant_type` or `invalid_scope`.'
          },
          403: MfaRequiredResponse,
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
      const { body } = request
      const client = await requestingClient(request, body, clients, auditLog, fastify.oauth.publicClient)
      reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
      const grant = GRANTS.get(body.grant_type)
      if (!grant) throw new OAuthError('unsupported_grant_type', `The grant type "${body.grant_type}" is not supported.`)
      if (grant.confidentialOnly && !client.confidential) {
        throw new OAuthError('invalid_client', `The ${body.grant_type} grant needs client authentication.`, { basicChallenge: true })
      }
      if (!client.grantTypes.includes(grant.partOf ?? body.grant_type)) {
        throw new OAuthError('unauthorized_client', `This client may not use the ${body.grant_type} grant.`)
      }
      return grant.handle({ fastify, request, body, reply, client })
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
