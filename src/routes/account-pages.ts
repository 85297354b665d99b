// The pages the links in emails open (unless RESET_PASSWORD_URL or
// VERIFY_EMAIL_URL send them to a front end): choose a new password, confirm
// an email address, and ask for a reset link. Plain HTML forms that work
// without JavaScript, posted form-encoded to the same flows as the JSON routes
// (plugins/app/account-email.ts), with the same generic messages.
//
// Opening a link changes nothing: a mail program or a link scanner that
// fetches it ahead of the person spends no token. The change happens when the
// page's form is sent.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ProblemError } from '../lib/errors.js'
import { invalidLink } from '../plugins/app/account-email.js'
import { pageResponses } from '../plugins/app/pages.js'
import { FORGOT_MESSAGE, ForgotPasswordForm, LinkQuery, ResetPasswordForm, VerifyEmailForm } from '../schemas/email.js'

const FORM = ['application/x-www-form-urlencoded']
const INVALID_LINK_TITLE = 'This link does not work'

const accountPages: FastifyPluginAsyncTypebox = async (fastify) => {
  const { accountEmail, config } = fastify
  const rateLimit = { max: config.AUTH_RATE_LIMIT_MAX, timeWindow: config.AUTH_RATE_LIMIT_WINDOW * 1000 }
  const routeConfig = { page: true, rateLimit }
  const minLength = config.PASSWORD_MIN_LENGTH
  const invalidLinkPage = {
    title: INVALID_LINK_TITLE,
    paragraphs: [invalidLink().message],
    link: { href: '/account/reset-password', text: 'Ask for a new password reset link' }
  }

  fastify.get(
    '/account/reset-password',
    {
      config: routeConfig,
      schema: {
        tags: ['Pages'],
        operationId: 'resetPasswordPage',
        summary: 'Page: choose a new password (or ask for a link)',
        description:
          'The page a reset link opens: with a usable `token`, a form for the new password (posted to `POST /account/reset-password`); without one, a form that asks for a link by email. For browsers; the JSON routes are `POST /auth/password/forgot` and `POST /auth/password/reset`.',
        produces: ['text/html'],
        querystring: LinkQuery,
        response: pageResponses({ 200: 'The form.', 400: 'The link cannot be used (or the query is malformed).', 429: 'Too many requests.' })
      }
    },
    async (request, reply) => {
      const { token } = request.query
      if (!token) return reply.page('forgot-password', { title: 'Forgot your password?' })
      if (!(await accountEmail.findResetToken(token))) return reply.page('message', invalidLinkPage, 400)
      return reply.page('reset-password', { title: 'Choose a new password', token, minLength })
    }
  )

  fastify.post(
    '/account/reset-password',
    {
      config: routeConfig,
      schema: {
        tags: ['Pages'],
        operationId: 'resetPasswordForm',
        summary: 'Page: set the new password',
        description: 'The form of the reset page (form-encoded: `token`, `new_password`, `new_password_again`). Does what `POST /auth/password/reset` does.',
        consumes: FORM,
        produces: ['text/html'],
        body: ResetPasswordForm,
        response: pageResponses({
          200: 'The password is set; every session has ended.',
          400: 'The link cannot be used, or the password was refused (the form again, with why).',
          429: 'Too many requests.'
        })
      }
    },
    async (request, reply) => {
      const { token, new_password: password, new_password_again: again } = request.body
      const form = (errors: string[]) =>
        reply.page('reset-password', { title: 'Choose a new password', token, minLength, errors }, 400)
      if (password !== again) return form(['The two passwords differ. Type the same new password twice.'])
      try {
        await accountEmail.resetPassword(request, reply, token, password)
      } catch (error) {
        if (!(error instanceof ProblemError) || error.statusCode !== 400) throw error
        if (error.errors?.some((field) => field.field === 'token')) return reply.page('message', invalidLinkPage, 400)
        return form((error.errors ?? []).map((field) => `The password ${field.message}.`))
      }
      return reply.page('message', {
        title: 'Your password is changed',
        paragraphs: ['Sign in with your new password. Every device that was signed in to your account has been signed out.']
      })
    }
  )

  fastify.post(
    '/account/forgot-password',
    {
      config: routeConfig,
      schema: {
        tags: ['Pages'],
        operationId: 'forgotPasswordForm',
        summary: 'Page: ask for a reset link',
        description: 'The form of the reset page without a link (form-encoded: `email`). Does what `POST /auth/password/forgot` does, with the same answer whether or not an account has the address.',
        consumes: FORM,
        produces: ['text/html'],
        body: ForgotPasswordForm,
        response: pageResponses({ 200: 'Asked.', 400: 'Not an email address.', 429: 'Too many requests.' })
      }
    },
    async (request, reply) => {
      const email = request.body.email.trim()
      // The JSON route's rule for an address, by hand: the form comes back, not an error page.
      if (email.length < 3 || !/^[^\s@]+@[^\s@]+$/.test(email)) {
        return reply.page('forgot-password', { title: 'Forgot your password?', email, error: 'Enter an email address.' }, 400)
      }
      await accountEmail.requestPasswordReset(request, email)
      return reply.page('message', { title: 'Check your email', paragraphs: [FORGOT_MESSAGE, 'The link works once, and only for a while.'] })
    }
  )

  fastify.get(
    '/account/verify-email',
    {
      config: routeConfig,
      schema: {
        tags: ['Pages'],
        operationId: 'verifyEmailPage',
        summary: 'Page: confirm an email address',
        description:
          'The page a verification link opens: a button that confirms the address (posted to `POST /account/verify-email`). Opening it changes nothing. For browsers; the JSON route is `POST /auth/email/verify`.',
        produces: ['text/html'],
        querystring: LinkQuery,
        response: pageResponses({ 200: 'The confirmation button.', 400: 'The link cannot be used.', 429: 'Too many requests.' })
      }
    },
    async (request, reply) => {
      const { token } = request.query
      const live = token ? await accountEmail.findVerifyToken(token) : undefined
      if (!token || !live) return reply.page('message', { title: INVALID_LINK_TITLE, paragraphs: [invalidLink().message] }, 400)
      const change = live.kind === 'email_change'
      return reply.page('verify-email', {
        title: change ? 'Confirm your new email address' : 'Confirm your email address',
        explanation: change
          ? `Confirm to make ${live.email} the email address you sign in with.`
          : `Confirm that ${live.email} is the email address of your account.`,
        button: 'Confirm',
        token
      })
    }
  )

  fastify.post(
    '/account/verify-email',
    {
      config: routeConfig,
      schema: {
        tags: ['Pages'],
        operationId: 'verifyEmailForm',
        summary: 'Page: confirm',
        description: 'The button of the verification page (form-encoded: `token`). Does what `POST /auth/email/verify` does.',
        consumes: FORM,
        produces: ['text/html'],
        body: VerifyEmailForm,
        response: pageResponses({
          200: 'Confirmed.',
          400: 'The link cannot be used.',
          409: 'Another account has the new address now.',
          429: 'Too many requests.'
        })
      }
    },
    async (request, reply) => {
      let outcome
      try {
        outcome = await accountEmail.verifyEmail(request, request.body.token)
      } catch (error) {
        if (error instanceof ProblemError && error.statusCode === 400) {
          return reply.page('message', { title: INVALID_LINK_TITLE, paragraphs: [invalidLink().message] }, 400)
        }
        throw error
      }
      return reply.page('message', {
        title: outcome === 'changed' ? 'Your email address is changed' : 'Your email address is confirmed',
        paragraphs: [
          outcome === 'changed'
            ? 'Sign in with your new email address from now on. Other devices signed in to your account have been signed out.'
            : 'Thank you: your email address is confirmed.'
        ]
      })
    }
  )
}

export default accountPages
