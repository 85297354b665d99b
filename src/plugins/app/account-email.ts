// What the links sent by email do, and what sends them: a password reset, the
// verification of the account's email, and an email change that happens only
// when its link is used. One implementation for the JSON routes
// (routes/email.ts), the pages a link opens (routes/account-pages.ts), signup,
// PATCH /users/me and the password grant.
//
// Every link that fails — malformed, unknown, expired, used, or outdated by a
// change of the account — gets the same answer (400), so a probe learns
// nothing about which it was.
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { whileClientWaits } from '../../lib/client-waits.js'
import { badRequest, conflict, tooManyRequests } from '../../lib/errors.js'
import { auditSource } from '../../repositories/audit.js'
import type { LiveToken } from '../../repositories/email-tokens.js'
import { normalizeEmail } from '../../repositories/users.js'

export interface AccountEmail {
  /** Queues a reset link for `email` if an active account has it: the same work, answer and time whether or not one does. */
  requestPasswordReset(request: FastifyRequest, email: string): Promise<void>
  /** The reset link's token if it may still be used (the reset page shows its form only then). */
  findResetToken(token: string): Promise<LiveToken | undefined>
  /** Sets a new password with a reset link: every session ends, the lockout of this address is lifted. */
  resetPassword(request: FastifyRequest, reply: FastifyReply, token: string, newPassword: string): Promise<void>
  /** The verification link's token if it may still be used. */
  findVerifyToken(token: string): Promise<LiveToken | undefined>
  /** Uses a verification link: the email is verified, or the pending email becomes the login. */
  verifyEmail(request: FastifyRequest, token: string): Promise<'verified' | 'changed'>
  /** Sends a fresh link for the pending email or, without one, the unverified email (at most one a minute). */
  sendVerification(request: FastifyRequest, caller: { id: string; sessionId: string }): Promise<void>
  /** A new account's verification email. */
  welcome(userId: string, email: string): Promise<void>
  /**
   * REQUIRE_VERIFIED_EMAIL refuses a password login (with the right password)
   * of an unverified account: records it, sends a fresh link, and answers the
   * error to throw.
   */
  unverifiedLogin(request: FastifyRequest, account: { id: string; email: string }): Promise<void>
  /** Asks for a new login email: pending until the link sent to it is used; the old address is told. */
  requestEmailChange(
    request: FastifyRequest,
    account: { id: string; email: string; securityVersion: number; sessionId: string },
    newEmail: string
  ): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    accountEmail: AccountEmail
  }
}

/** The one answer to every link that cannot be used, whatever the reason. */
export const invalidLink = () =>
  badRequest('This link is invalid, expired or already used. Ask for a new one.', [{ field: 'token', message: 'is invalid, expired or already used' }])

export default fp(
  async function accountEmailPlugin(fastify) {
    const { emailTokensRepository: tokens, mailOutboxRepository: outbox, usersRepository: users, auditLog, passwords, mail } = fastify
    const { loginThrottle, reauthThrottle } = fastify

    const flows: AccountEmail = {
      async requestPasswordReset(request, email) {
        await outbox.enqueuePasswordReset(email, auditSource(request))
        mail.queued()
      },

      findResetToken: (token) => tokens.find(token, ['password_reset']),

      async resetPassword(request, reply, token, newPassword) {
        const live = await tokens.find(token, ['password_reset'])
        if (!live) throw invalidLink()
        const weak = passwords.policyErrors(newPassword, 'new_password', live.accountEmail)
        if (weak.length > 0) throw badRequest('The new password does not meet the policy.', weak)
        const hash = await passwords.hash(newPassword, whileClientWaits(reply))
        // Spent and applied only if still usable: a second use, or a change since the check, fails here.
        if (!(await tokens.resetPassword(live, hash))) throw invalidLink()
        await loginThrottle.recovered(request, reply, live.accountEmail)
        await reauthThrottle.forget(live.userId)
        await auditLog.record('password.reset', request, { userId: live.userId })
      },

      findVerifyToken: (token) => tokens.find(token, ['email_verification', 'email_change']),

      async verifyEmail(request, token) {
        const live = await tokens.find(token, ['email_verification', 'email_change'])
        if (!live) throw invalidLink()
        const result = await tokens.verify(live)
        if (!result) throw invalidLink()
        if (result.outcome === 'taken') {
          throw conflict('Another account uses this email address now, so the change was cancelled. Ask for a change to another address.')
        }
        if (result.outcome === 'changed') {
          await auditLog.record('email.changed', request, {
            userId: result.userId,
            details: { target_user_id: result.userId, previous_email: result.previousEmail, email: result.email }
          })
        } else {
          await auditLog.record('email.verified', request, { userId: result.userId, details: { email: result.email } })
        }
        return result.outcome
      },

      async sendVerification(request, { id: userId, sessionId }) {
        const user = await users.get(userId)
        if (user.pending_email !== undefined) {
          const account = await users.findCredentialsById(userId)
          if (!account) return
          await outbox.enqueue([{ kind: 'email_change', userId, recipient: user.pending_email, securityVersion: account.securityVersion, sessionId }])
        } else if (!user.email_verified) {
          await outbox.enqueue([{ kind: 'email_verification', userId, recipient: user.email }])
        } else {
          throw conflict('The email address is verified already, and no change of it is pending.')
        }
        mail.queued()
        await auditLog.record('email.verification_requested', request, { userId, sessionId })
      },

      async welcome(userId, email) {
        await outbox.enqueue([{ kind: 'email_verification', userId, recipient: normalizeEmail(email) }])
        mail.queued()
      },

      async unverifiedLogin(request, account) {
        await auditLog.record('login.failure', request, { userId: account.id, details: { reason: 'email_not_verified' } })
        await flows.welcome(account.id, account.email)
      },

      async requestEmailChange(request, account, newEmail) {
        const email = normalizeEmail(newEmail)
        if (email === account.email) {
          // Asking for the email the account has: whatever change was pending is called off.
          await outbox.cancelEmailChange(account.id)
          return
        }
        if (await users.findCredentials(email)) throw conflict('An account with this email already exists.')
        // At most one a minute, refused openly: the caller is the account's owner, and would
        // otherwise be left with a pending address that no link was sent to.
        const next = await outbox.nextAllowed(account.id, 'email_change')
        if (next) throw tooManyRequests((next.getTime() - Date.now()) / 1000)
        const recorded = await outbox.requestEmailChange({
          userId: account.id,
          expectedVersion: account.securityVersion,
          newEmail: email,
          oldEmail: account.email,
          sessionId: account.sessionId
        })
        if (!recorded) throw conflict('The account changed while this request was running; try again.')
        mail.queued(2)
        await auditLog.record('email.change_requested', request, {
          userId: account.id,
          sessionId: account.sessionId,
          details: { target_user_id: account.id, email }
        })
      }
    }
    fastify.decorate('accountEmail', flows)
  },
  { name: 'account-email', dependencies: ['repositories', 'mailer', 'passwords', 'login-throttle'] }
)
