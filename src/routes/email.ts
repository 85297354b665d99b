// Password reset and email verification as JSON routes, for front ends and
// scripts (the pages a link opens by default are routes/account-pages.ts; both
// call the same flows, plugins/app/account-email.ts). Registered only when the
// service sends email (not with MAIL_DISABLED), so they are absent from the
// docs then.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { trimFields } from '../lib/trim.js'
import { NoContent, problems } from '../schemas/common.js'
import {
  Accepted,
  FORGOT_MESSAGE,
  ForgotPasswordBody,
  ResetPasswordBody,
  VERIFICATION_MESSAGE,
  VerifyEmailBody
} from '../schemas/email.js'

const emailRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { accountEmail, config } = fastify
  const rateLimit = { max: config.AUTH_RATE_LIMIT_MAX, timeWindow: config.AUTH_RATE_LIMIT_WINDOW * 1000 }
  const ttl = `${Math.round(config.RESET_TOKEN_TTL / 60)} minutes`

  fastify.post(
    '/auth/password/forgot',
    {
      config: { rateLimit },
      preValidation: trimFields(['email']),
      schema: {
        tags: ['Accounts'],
        operationId: 'forgotPassword',
        summary: 'Forgot your password? Get a reset link by email',
        description: `If an active account has this email, a link to choose a new password goes there (it works once, within \`RESET_TOKEN_TTL\`, ${ttl} by default). The answer, and the time it takes, are the same whether or not an account exists; at most one email a minute goes to an account, whatever is asked. The link opens \`/account/reset-password\`, or \`RESET_PASSWORD_URL\` when set; either sends the token to \`POST /auth/password/reset\`.`,
        body: ForgotPasswordBody,
        response: {
          202: Accepted('Asked; the email goes out after this answer, if an account has the address.', FORGOT_MESSAGE),
          ...problems({ 400: 'Not an email address', 429: 'Too many requests from this address' })
        }
      }
    },
    async (request, reply) => {
      await accountEmail.requestPasswordReset(request, request.body.email)
      return reply.code(202).header('cache-control', 'no-store').send({ message: FORGOT_MESSAGE })
    }
  )

  fastify.post(
    '/auth/password/reset',
    {
      config: { rateLimit },
      schema: {
        tags: ['Accounts'],
        operationId: 'resetPassword',
        summary: 'Set a new password with a reset link',
        description:
          "The `token` of the link in the reset email and a new password (the same policy as everywhere). **Every** session of the account ends, on every device; the account's lockout is lifted for this address and device, and the email counts as verified. A link works once; a used, expired or unknown one, or one sent before the account's password or email changed, is a 400.",
        body: ResetPasswordBody,
        response: {
          204: NoContent('The password is changed; every session of the account has ended.'),
          ...problems({
            400: 'The link is invalid, expired or used, or the new password is too weak',
            429: 'Too many requests from this address',
            503: 'Temporarily unavailable'
          })
        }
      }
    },
    async (request, reply) => {
      await accountEmail.resetPassword(request, reply, request.body.token, request.body.new_password)
      return reply.code(204).header('cache-control', 'no-store').send()
    }
  )

  fastify.post(
    '/auth/email/verify',
    {
      config: { rateLimit },
      schema: {
        tags: ['Accounts'],
        operationId: 'verifyEmail',
        summary: 'Verify an email address with its link',
        description:
          "The `token` of the link in a verification email. The account's email becomes verified — or, for the link sent to a new address (`PATCH /users/me`), that address becomes the account's email, and every session but the one that asked for the change ends. A used, expired or unknown link is a 400; a new address that another account took meanwhile is a 409, and the change is cancelled.",
        body: VerifyEmailBody,
        response: {
          204: NoContent('Verified (or the email changed).'),
          ...problems({
            400: 'The link is invalid, expired or used',
            409: 'Another account has the new address now; the change is cancelled',
            429: 'Too many requests from this address'
          })
        }
      }
    },
    async (request, reply) => {
      await accountEmail.verifyEmail(request, request.body.token)
      return reply.code(204).header('cache-control', 'no-store').send()
    }
  )

  fastify.post(
    '/users/me/email/verification',
    {
      onRequest: [fastify.authenticate, fastify.requireUser],
      config: { rateLimit },
      schema: {
        tags: ['Users'],
        operationId: 'sendVerificationEmail',
        summary: 'Send a fresh verification email',
        description:
          'Sends a new link to the pending new email (after `PATCH /users/me`), or else to your email while it is not verified; the earlier link of that kind stops working. At most one email a minute: asking again sooner answers the same and sends nothing. 409 when the email is verified and no change is pending.',
        security: [{ oauth2: [] }],
        response: {
          202: Accepted('Asked; the email goes out after this answer.', VERIFICATION_MESSAGE),
          ...problems({
            401: 'Missing, invalid or revoked token',
            403: 'Service clients have no account',
            409: 'Nothing to verify: the email is verified and no change is pending',
            429: 'Too many requests'
          })
        }
      }
    },
    async (request, reply) => {
      const { id, sessionId } = request.user
      await accountEmail.sendVerification(request, { id, sessionId })
      return reply.code(202).send({ message: VERIFICATION_MESSAGE })
    }
  )
}

export default emailRoutes
