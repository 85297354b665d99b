// The caller's own account (`/users/me`) and user administration.
//
// Whatever a stolen access token must not be enough for asks for the current
// password again: a new password, a new email (the login name), deleting the
// account. Those checks are throttled per account (see login-throttle.ts),
// and the change is applied only if the account is still as it was when the
// password was checked (its security version), so two changes racing each
// other cannot both pass on one check.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import { badRequest, BearerError, forbidden, notFound } from '../lib/errors.js'
import { ADMINISTRATIVE_SCOPES, missingScopes } from '../lib/scopes.js'
import { trimFields } from '../lib/trim.js'
import { auditActor } from '../repositories/audit.js'
import type { Credentials } from '../repositories/users.js'
import { IdParams, NoContent, Page, problems, refTo } from '../schemas/common.js'
import { AdminUpdateUserBody, ChangePasswordBody, Consent, ConsentParams, DeleteMeBody, UpdateMeBody, User, UsersQuery } from '../schemas/users.js'

const bearer = { 401: 'Missing, invalid or revoked token' }
const userOnly = { ...bearer, 403: 'Service clients have no account' }
const reauthProblems = {
  ...userOnly,
  409: 'The account changed while the request was running; try again',
  429: 'Too many wrong current passwords',
  503: 'Temporarily unavailable'
}

const usersRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { usersRepository: users, passwords, auditLog, config, reauthThrottle } = fastify
  const asUser = [fastify.authenticate, fastify.requireUser]

  /**
   * Checks the caller's current password (throttled per account) and answers
   * the account as it was when checked: its security version is what the
   * change must still find.
   */
  async function reauthenticate(request: FastifyRequest, currentPassword: string): Promise<Credentials> {
    const attempt = await reauthThrottle.attempt(request.user.id)
    const account = await users.findCredentialsById(request.user.id)
    const check = await passwords.verify(account?.passwordHash, currentPassword)
    if (!account || !check.valid) {
      throw badRequest('The current password is incorrect.', [{ field: 'current_password', message: 'is incorrect' }])
    }
    await attempt.succeeded()
    return account
  }

  fastify.get(
    '/users/me',
    {
      onRequest: asUser,
      schema: {
        tags: ['Users'],
        operationId: 'getMe',
        summary: 'Your account',
        description: 'The account of the user the access token belongs to. Service clients have none (403).',
        security: [{ oauth2: [] }],
        response: { 200: refTo(User, 'Your account.'), ...problems(userOnly) }
      }
    },
    async (request) => users.get(request.user.id)
  )

  fastify.patch(
    '/users/me',
    {
      onRequest: asUser,
      preValidation: trimFields(['email', 'full_name']),
      schema: {
        tags: ['Users'],
        operationId: 'updateMe',
        summary: 'Change your name or email',
        description:
          'Send `full_name`, `email` or both; other fields are refused. Changing `email` (your login) needs `current_password`, and happens in two steps: the new address gets a link and the old one a notice, the answer shows it as `pending_email`, and the email changes (ending your other sessions) when the link is used — refused then if another account took the address meanwhile. One change a minute (429). Sending your current email calls a pending change off. A new email is stored lower-cased. (A service that sends no email, `MAIL_DISABLED`, changes it at once.)',
        security: [{ oauth2: [] }],
        body: UpdateMeBody,
        response: {
          200: refTo(User, 'Your updated account.'),
          ...problems({
            ...reauthProblems,
            400: 'Invalid body, or `current_password` missing or wrong for an email change',
            409: 'The email is taken, or the account changed while the request was running',
            429: 'Too many wrong current passwords, or an email change asked for less than a minute ago'
          })
        }
      }
    },
    async (request) => {
      const { full_name: fullName, email, current_password: currentPassword } = request.body
      if (email !== undefined) {
        if (currentPassword === undefined) {
          throw badRequest('Changing the email needs your current password.', [{ field: 'current_password', message: 'is required to change the email' }])
        }
        const account = await reauthenticate(request, currentPassword)
        const { sessionId } = request.user
        if (fastify.mail.enabled) await fastify.accountEmail.requestEmailChange(request, { ...account, sessionId }, email)
        else await users.changeEmail(account.id, email, account.securityVersion, sessionId)
      }
      const user = fullName === undefined ? await users.get(request.user.id) : await users.rename(request.user.id, fullName)
      // Posts show their author's name: this instance's readers see the new one at once.
      if (fullName !== undefined) fastify.postCache.forgetAuthor(user.id)
      await auditLog.record('user.updated', request, {
        ...auditActor(request.user),
        details: { target_user_id: user.id, fields: Object.keys(request.body).filter((field) => field !== 'current_password') }
      })
      return user
    }
  )

  fastify.put(
    '/users/me/password',
    {
      onRequest: asUser,
      config: { rateLimit: { max: config.AUTH_RATE_LIMIT_MAX, timeWindow: config.AUTH_RATE_LIMIT_WINDOW * 1000 } },
      schema: {
        tags: ['Users'],
        operationId: 'changePassword',
        summary: 'Change your password',
        description: 'Needs the current password. Every other session of the account ends; this one goes on.',
        security: [{ oauth2: [] }],
        body: ChangePasswordBody,
        response: {
          204: NoContent('Changed; every other session has ended.'),
          ...problems({ ...reauthProblems, 400: 'Wrong current password, or a weak new one' })
        }
      }
    },
    async (request, reply) => {
      const account = await reauthenticate(request, request.body.current_password)
      const weak = passwords.policyErrors(request.body.new_password, 'new_password', account.email)
      if (weak.length > 0) throw badRequest('The new password does not meet the policy.', weak)
      const hash = await passwords.hash(request.body.new_password)
      await users.changePassword(account.id, hash, account.securityVersion, request.user.sessionId)
      await auditLog.record('password.changed', request, auditActor(request.user))
      return reply.code(204).send()
    }
  )

  fastify.delete(
    '/users/me',
    {
      onRequest: asUser,
      schema: {
        tags: ['Users'],
        operationId: 'deleteMe',
        summary: 'Delete your account',
        description: 'Needs the current password. Deletes the account with its posts and sessions; every token of it stops working.',
        security: [{ oauth2: [] }],
        body: DeleteMeBody,
        response: {
          204: NoContent('Deleted, with its posts and sessions.'),
          ...problems({
            ...reauthProblems,
            400: 'Missing or wrong current password',
            409: 'The last admin cannot be deleted, or the account changed while the request was running'
          })
        }
      }
    },
    async (request, reply) => {
      const account = await reauthenticate(request, request.body.current_password)
      await users.delete(account.id, account.securityVersion)
      fastify.postCache.forgetAuthor(account.id)
      await auditLog.record('user.deleted', request, { ...auditActor(request.user), details: { target_user_id: account.id } })
      return reply.code(204).send()
    }
  )

  fastify.get(
    '/users/:id',
    {
      onRequest: [fastify.authenticate],
      schema: {
        tags: ['Users'],
        operationId: 'getUser',
        summary: 'A user',
        description: 'Yourself, or anyone with `users:read`. Others get 403, whether or not the id exists.',
        security: [{ oauth2: [] }, { oauth2: ['users:read'] }],
        params: IdParams,
        response: {
          200: refTo(User, 'The account.'),
          ...problems({ ...bearer, 400: 'Invalid id', 403: 'Not yourself, and no users:read', 404: 'Unknown user (with users:read)' })
        }
      }
    },
    async (request) => {
      const caller = request.user
      const self = caller.kind === 'user' && caller.id.toLowerCase() === request.params.id.toLowerCase()
      if (!self && !caller.scopes.has('users:read')) throw forbidden('You may only read your own account.')
      return users.get(request.params.id)
    }
  )

  fastify.get(
    '/users',
    {
      onRequest: [fastify.authenticate, fastify.requireScope('users:read')],
      schema: {
        tags: ['Administration'],
        operationId: 'listUsers',
        summary: 'List users',
        description: 'Oldest first, in pages of `limit`; pass `next_cursor` as `cursor` for the next page.',
        security: [{ oauth2: ['users:read'] }],
        querystring: UsersQuery,
        response: {
          200: Page(User, 'A page of users, oldest first.'),
          ...problems({ ...bearer, 400: 'Invalid query', 403: 'Needs users:read' })
        }
      }
    },
    async (request) => users.list(request.query)
  )

  fastify.patch(
    '/users/:id',
    {
      onRequest: [fastify.authenticate, fastify.requireScope('users:write')],
      schema: {
        tags: ['Administration'],
        operationId: 'updateUser',
        summary: 'Activate, deactivate or change the role of a user, or turn their MFA off',
        description:
          "Any change ends every session of the user: a deactivated user's tokens stop working at once, and so do those of a user whose role changes (they carry the old role's scopes). `mfa_enabled: false` is the recovery path of a user who lost their authenticator and their recovery codes: their second factors are deleted (check who is asking first: it leaves the password as the only factor). Making an admin, or changing one (their MFA included), needs every administrative scope (`posts:moderate users:read users:write clients:manage audit:read`), not only `users:write`. The last active admin cannot be demoted or deactivated (409).",
        security: [{ oauth2: ['users:write'] }],
        params: IdParams,
        body: AdminUpdateUserBody,
        response: {
          200: refTo(User, 'The updated account.'),
          ...problems({
            ...bearer,
            400: 'Invalid body',
            403: 'Needs users:write, and every administrative scope to make or change an admin',
            404: 'Unknown user',
            409: 'The last active admin cannot be demoted or deactivated'
          })
        }
      }
    },
    async (request) => {
      const { is_active: isActive, role, mfa_enabled: mfaEnabled } = request.body
      // Nobody gives powers they do not hold: making or changing an admin takes every administrative scope.
      const { user, mfaReset } = await users.adminUpdate(request.params.id, { isActive, role, mfaEnabled }, (current) => {
        if (current.role !== 'admin' && role !== 'admin') return
        const missing = missingScopes(ADMINISTRATIVE_SCOPES, request.user.scopes)
        if (missing.length > 0) {
          throw new BearerError('insufficient_scope', 'Making or changing an admin needs every administrative scope.', {
            realm: config.JWT_AUDIENCE,
            scope: missing.join(' ')
          })
        }
      })
      await auditLog.record('user.updated', request, {
        ...auditActor(request.user),
        details: { target_user_id: user.id, ...request.body }
      })
      if (mfaReset) await auditLog.record('mfa.disabled', request, { ...auditActor(request.user), details: { target_user_id: user.id, by: 'admin' } })
      return user
    }
  )

  fastify.get(
    '/users/me/consents',
    {
      onRequest: asUser,
      schema: {
        tags: ['Users'],
        operationId: 'listMyConsents',
        summary: 'The apps you allowed',
        description:
          'Apps that are not first-party ask for your consent on the sign-in page; what you allowed is remembered, so an app asking again for no more is not asked about again. Newest first.',
        security: [{ oauth2: [] }],
        response: { 200: Type.Array(Consent, { description: 'Your consents.' }), ...problems(userOnly) }
      }
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store')
      return fastify.consentsRepository.list(request.user.id)
    }
  )

  fastify.delete(
    '/users/me/consents/:client_id',
    {
      onRequest: asUser,
      schema: {
        tags: ['Users'],
        operationId: 'withdrawConsent',
        summary: 'Withdraw your consent to an app',
        description:
          'The app loses what you allowed it: the sessions you started through it end (its access and refresh tokens stop working on every instance), and it must ask for your consent again to sign you in.',
        security: [{ oauth2: [] }],
        params: ConsentParams,
        response: { 204: NoContent('Withdrawn.'), ...problems({ ...userOnly, 404: 'You gave that app no consent' }) }
      }
    },
    async (request, reply) => {
      const clientId = request.params.client_id
      if (!(await fastify.consentsRepository.withdraw(request.user.id, clientId))) throw notFound('Consent')
      await auditLog.record('consent.withdrawn', request, { ...auditActor(request.user), details: { target_client_id: clientId } })
      return reply.code(204).send()
    }
  )
}

export default usersRoutes
