// OAuth clients, for holders of `clients:manage`: services (client
// credentials) and apps users sign in to (authorization code with PKCE),
// confidential or public. Nobody hands out powers they do not hold: a caller
// registers clients only with scopes its own token carries (the OpenID
// Connect scopes excepted: they are consent, not power), rotates or deletes
// only clients whose scopes it holds too (rotating another's secret would
// hand over its powers), and makes a client first-party (users are not asked
// to consent) only with every administrative scope.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import { badRequest, forbidden } from '../lib/errors.js'
import { ADMINISTRATIVE_SCOPES, missingScopes, powersOf } from '../lib/scopes.js'
import { registrationProblems, type Registration } from '../oauth/clients.js'
import { Client, ClientWithSecret, CreateClientBody } from '../schemas/clients.js'
import { auditActor } from '../repositories/audit.js'
import { Cursor, IdParams, Limit, NoContent, Page, problems } from '../schemas/common.js'

const managed = { 401: 'Missing, invalid or revoked token', 403: "Needs clients:manage, and every scope of the client concerned" }

/** Refuses when the caller's token lacks a scope of `scopes`. */
function holdsAll(request: FastifyRequest, scopes: Iterable<string>, action: string) {
  const missing = missingScopes(powersOf(scopes), request.user.scopes)
  if (missing.length > 0) {
    throw forbidden(`You can ${action} only with scopes you hold yourself; missing: ${missing.join(' ')}.`)
  }
}

const clientsRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { clientsRepository: clients, auditLog } = fastify
  const manager = [fastify.authenticate, fastify.requireScope('clients:manage')]

  fastify.post(
    '/clients',
    {
      onRequest: manager,
      preValidation: async (request) => {
        const body = request.body as { name?: unknown }
        if (typeof body?.name === 'string') body.name = body.name.trim()
      },
      schema: {
        tags: ['Service clients'],
        operationId: 'createClient',
        summary: 'Register a service client',
        description:
          'The `client_secret` is shown only in this answer; it is stored as a hash. You can grant only scopes your own token carries (403 otherwise).',
        security: [{ oauth2: ['clients:manage'] }],
        body: CreateClientBody,
        response: {
          201: {
            ...ClientWithSecret,
            description: 'The new client, with its secret (the only time it is shown).',
            headers: { Location: { type: 'string', description: 'The path of the new client.' } }
          },
          ...problems({ ...managed, 400: 'Invalid body' })
        }
      }
    },
    async (request, reply) => {
      const { name, scopes, grant_types: grantTypes, redirect_uris: redirectUris, post_logout_redirect_uris: postLogoutRedirectUris } = request.body
      const isPublic = request.body.public ?? false
      const registration: Registration = {
        scopes,
        // A public client cannot use client credentials: it signs users in.
        grantTypes: grantTypes ?? (isPublic ? ['authorization_code', 'refresh_token'] : ['client_credentials']),
        redirectUris: redirectUris ?? [],
        postLogoutRedirectUris: postLogoutRedirectUris ?? [],
        isPublic,
        firstParty: request.body.first_party ?? false
      }
      const problems = registrationProblems(registration)
      if (problems.length > 0) throw badRequest('The client registration is not valid.', problems.slice(0, 5))
      holdsAll(request, scopes, 'grant a client scopes')
      if (registration.firstParty) holdsAll(request, ADMINISTRATIVE_SCOPES, 'make a client first-party')
      const client = await clients.create({ name, ...registration })
      await auditLog.record('client.created', request, { ...auditActor(request.user), details: { target_client_id: client.client_id } })
      return reply.code(201).header('location', `/clients/${client.client_id}`).send(client)
    }
  )

  fastify.get(
    '/clients',
    {
      onRequest: manager,
      schema: {
        tags: ['Service clients'],
        operationId: 'listClients',
        summary: 'List service clients',
        description: 'Oldest first, in pages of `limit`; pass `next_cursor` as `cursor` for the next page. Never shows secrets.',
        security: [{ oauth2: ['clients:manage'] }],
        querystring: Type.Object({ limit: Limit, cursor: Type.Optional(Cursor) }, { additionalProperties: false }),
        response: { 200: Page(Client, 'A page of service clients, oldest first.'), ...problems({ ...managed, 400: 'Invalid query' }) }
      }
    },
    async (request) => clients.list(request.query)
  )

  fastify.post(
    '/clients/:id/secret',
    {
      onRequest: manager,
      schema: {
        tags: ['Service clients'],
        operationId: 'rotateClientSecret',
        summary: 'Rotate a client secret',
        description:
          'Issues a new secret. The old one, and every token minted with it, stop working at once. Only for clients whose every scope your token carries.',
        security: [{ oauth2: ['clients:manage'] }],
        params: IdParams,
        response: {
          200: { ...ClientWithSecret, description: 'The client with its new secret (the only time it is shown).' },
          ...problems({ ...managed, 400: 'Invalid id', 404: 'Unknown client' })
        }
      }
    },
    async (request) => {
      const client = await clients.rotateSecret(request.params.id, (target) => holdsAll(request, target.scopes, "rotate a client's secret"))
      await auditLog.record('client.secret_rotated', request, { ...auditActor(request.user), details: { target_client_id: client.client_id } })
      return client
    }
  )

  fastify.delete(
    '/clients/:id',
    {
      onRequest: manager,
      schema: {
        tags: ['Service clients'],
        operationId: 'deleteClient',
        summary: 'Delete a service client',
        description:
          'Its tokens stop working at once, and so do the sessions users signed in to through it. Only for clients whose every scope your token carries.',
        security: [{ oauth2: ['clients:manage'] }],
        params: IdParams,
        response: { 204: NoContent('Deleted; its tokens stop working.'), ...problems({ ...managed, 400: 'Invalid id', 404: 'Unknown client' }) }
      }
    },
    async (request, reply) => {
      await clients.delete(request.params.id, (target) => holdsAll(request, target.scopes, 'delete a client'))
      await auditLog.record('client.deleted', request, { ...auditActor(request.user), details: { target_client_id: request.params.id } })
      return reply.code(204).send()
    }
  )
}

export default clientsRoutes
