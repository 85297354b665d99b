// What every grant of the token endpoint is given, and what it answers.
import type { Static } from '@sinclair/typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { TokenBody, TokenResponse } from '../../schemas/auth.js'
import type { RequestingClient } from '../client-auth.js'

export type TokenRequestBody = Static<typeof TokenBody>

export interface GrantContext {
  fastify: FastifyInstance
  request: FastifyRequest
  /** The request's validated parameters. */
  body: TokenRequestBody
  reply: FastifyReply
  /** The client asking (authenticated, or the public client). */
  client: RequestingClient
}

export type TokenAnswer = Static<typeof TokenResponse>

/** A grant type: checks its parameters, decides, and issues tokens (RFC 6749 §4–6). */
export type GrantHandler = (context: GrantContext) => Promise<TokenAnswer>

export interface Grant {
  handle: GrantHandler
  /** Only an authenticated (confidential) client may use it: anyone else is `invalid_client`. */
  confidentialOnly?: boolean
  /** A step of another grant: a client may use it when it may use that grant. */
  partOf?: string
}
