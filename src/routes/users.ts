// The caller's own account (`/users/me`) and user administration.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { badRequest, forbidden } from '../lib/errors.js'
import { trimFields } from '../lib/trim.js'
import { auditActor } from '../repositories/audit.js'
import { IdParams, NoContent, Page, problems, refTo } from '../schemas/common.js'
import { AdminUpdateUserBody, ChangePasswordBody, UpdateMeBody, User, UsersQuery } from '../schemas/users.js'

const bearer = { 401: 'Missing, invalid or revoked token' }
const userOnly = { ...bearer, 403: 'Service clients have no account' }

const usersRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { usersRepository: users, passwords, auditLog, config, loginThrottle } = fastify
  const asUser = [fastify.authenticate, fastify.requireUser]

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
        description: 'Send `full_name`, `email` or both; other fields are refused. A new email is stored lower-cased.',
        security: [{ oauth2: [] }],
        body: UpdateMeBody,
        response: {
          200: refTo(User, 'Your updated account.'),
          ...problems({ ...userOnly, 400: 'Invalid body', 409: 'The email is taken' })
        }
      }
    },
    async (request) => {
      const user = await users.updateProfile(request.user.id, {
        fullName: request.body.full_name,
        email: request.body.email
      })
      // Posts show their author's name: this instance's readers see the new one at once.
      if (request.body.full_name !== undefined) fastify.postCache.forgetAuthor(user.id)
      await auditLog.record('user.updated', request, {
        ...auditActor(request.user),
        details: { target_user_id: user.id, fields: Object.keys(request.body) }
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
          ...problems({
            ...userOnly,
            400: 'Wrong current password, or a weak new one',
            429: 'Too many attempts',
            503: 'Temporarily unavailable'
          })
        }
      }
    },
    async (request, reply) => {
      const account = await users.findCredentialsById(request.user.id)
      // Guessing the current password here counts against the same lockout as failed logins.
      if (account) await loginThrottle.attempt(account.email)
      const check = await passwords.verify(account?.passwordHash, request.body.current_password)
      if (!account || !check.valid) {
        throw badRequest('The current password is incorrect.', [{ field: 'current_password', message: 'is incorrect' }])
      }
      await loginThrottle.succeeded(account.email)
      const weak = passwords.policyErrors(request.body.new_password, 'new_password', account.email)
      if (weak.length > 0) throw badRequest('The new password does not meet the policy.', weak)
      await users.changePassword(account.id, await passwords.hash(request.body.new_password), request.user.sessionId)
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
        description: 'Deletes the account with its posts and sessions; every token of it stops working.',
        security: [{ oauth2: [] }],
        response: {
          204: NoContent('Deleted, with its posts and sessions.'),
          ...problems({ ...userOnly, 409: 'The last admin cannot be deleted' })
        }
      }
    },
    async (request, reply) => {
      await users.delete(request.user.id)
      fastify.postCache.forgetAuthor(request.user.id)
      await auditLog.record('user.deleted', request, { ...auditActor(request.user), details: { target_user_id: request.user.id } })
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
        description: 'Yourself, or anyone for an admin or a holder of `users:read`. Others get 403, whether or not the id exists.',
        security: [{ oauth2: [] }],
        params: IdParams,
        response: {
          200: refTo(User, 'The account.'),
          ...problems({ ...bearer, 400: 'Invalid id', 403: 'Not yourself, and not an admin', 404: 'Unknown user (admins only)' })
        }
      }
    },
    async (request) => {
      const caller = request.user
      const allowed =
        (caller.kind === 'user' && caller.id === request.params.id) ||
        caller.scopes.has('users:read') ||
        (caller.kind === 'user' && (await users.isAdmin(caller.id)))
      if (!allowed) throw forbidden('You may only read your own account.')
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
        summary: 'Activate, deactivate or change the role of a user',
        description:
          "A deactivated user's tokens stop working at once, and so do those of a user whose role changes (they carry the old role's scopes). The last active admin cannot be demoted or deactivated (409).",
        security: [{ oauth2: ['users:write'] }],
        params: IdParams,
        body: AdminUpdateUserBody,
        response: {
          200: refTo(User, 'The updated account.'),
          ...problems({
            ...bearer,
            400: 'Invalid body',
            403: 'Needs users:write',
            404: 'Unknown user',
            409: 'The last active admin cannot be demoted or deactivated'
          })
        }
      }
    },
    async (request) => {
      const user = await users.adminUpdate(request.params.id, {
        isActive: request.body.is_active,
        role: request.body.role
      })
      await auditLog.record('user.updated', request, {
        ...auditActor(request.user),
        details: { target_user_id: user.id, ...request.body }
      })
      return user
    }
  )
}

export default usersRoutes
