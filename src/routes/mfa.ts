// Multi-factor sign-in, managed by its user: enrol an authenticator app
// (TOTP), confirm it with a code (MFA is on, recovery codes are shown once),
// replace the recovery codes, turn MFA off.
//
// A stolen access token is not enough for any of these: enrolling asks for
// the current password, the others for a code, and replacing the codes or
// turning MFA off for both. The password and the code of one request are one
// re-authentication attempt, throttled per account with the other
// current-password checks, and forgotten only when both are right: a known
// password does not buy unlimited guesses at the code. Turning MFA on or off
// and replacing the codes are changes of the account's security state (every
// other session ends), applied only if the account is still as it was when
// checked, and the code is consumed in the same transaction.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { badRequest, conflict, notFound } from '../lib/errors.js'
import type { AuditKind } from '../repositories/audit.js'
import { auditActor } from '../repositories/audit.js'
import { CodeRefusedError, type CodeMatch, type FactorState } from '../repositories/mfa.js'
import { NoContent, problems } from '../schemas/common.js'
import { CodeAndPasswordBody, ConfirmTotpBody, RecoveryCodes, StartTotpBody, TotpEnrolment } from '../schemas/mfa.js'

const managementProblems = {
  401: 'Missing, invalid or revoked token',
  403: 'Service clients have no account',
  429: 'Too many wrong passwords or codes',
  503: 'Temporarily unavailable'
}

type Purpose = 'enrolment' | 'recovery_codes' | 'disable'

const mfaRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { mfa, mfaRepository: factors, passwords, reauthThrottle, auditLog, config } = fastify
  const asUser = [fastify.authenticate, fastify.requireUser]
  const rateLimit = { max: config.AUTH_RATE_LIMIT_MAX, timeWindow: config.AUTH_RATE_LIMIT_WINDOW * 1000 }

  const wrongPassword = () => badRequest('The current password is incorrect.', [{ field: 'current_password', message: 'is incorrect' }])
  const wrongCode = () => badRequest('The code is incorrect, or was used already.', [{ field: 'code', message: 'is incorrect' }])
  const notOn = () => conflict('MFA is not on for this account.')

  const audit = (kind: AuditKind, request: FastifyRequest, details: Record<string, string>) =>
    auditLog.record(kind, request, { ...auditActor(request.user), details })

  async function stateOf(request: FastifyRequest): Promise<FactorState> {
    const state = await factors.factorState(request.user.id)
    if (!state) throw notFound('User')
    return state
  }

  /** A wrong code: recorded, and answered 400. */
  async function refuseCode(request: FastifyRequest, purpose: Purpose): Promise<never> {
    await audit('mfa.failure', request, { purpose, reason: 'wrong_code' })
    throw wrongCode()
  }

  /** Runs a change that consumes `code`; a code consumed meanwhile (or an unknown recovery code) is a wrong code. */
  async function consuming(request: FastifyRequest, purpose: Purpose, change: () => Promise<void>) {
    try {
      await change()
    } catch (error) {
      if (error instanceof CodeRefusedError) await refuseCode(request, purpose)
      throw error
    }
  }

  /**
   * The password and then the code of a request, as one re-authentication
   * attempt: its failure is forgotten only when both are right (the caller
   * calls `succeeded` once the change is made).
   */
  async function passwordAndCode(request: FastifyRequest, state: FactorState, password: string, code: string, purpose: Purpose) {
    const attempt = await reauthThrottle.attempt(state.userId)
    if (!(await passwords.verify(state.passwordHash, password)).valid) throw wrongPassword()
    const match: CodeMatch | undefined = state.secret
      ? mfa.matchCode({ userId: state.userId, secret: state.secret, lastUsedStep: state.lastUsedStep }, code, { recoveryCodes: true })
      : undefined
    if (!match) return refuseCode(request, purpose)
    return { match, attempt }
  }

  fastify.post(
    '/users/me/mfa/totp',
    {
      onRequest: asUser,
      config: { rateLimit },
      schema: {
        tags: ['Multi-factor sign-in'],
        operationId: 'startTotp',
        summary: 'Start enrolling an authenticator app',
        description:
          'Needs the current password. Answers a new TOTP secret (RFC 6238: SHA-1, 6 digits, 30 seconds) and its `otpauth://` URI: show the URI as a QR code, or type the secret into the app. Nothing changes until `POST /users/me/mfa/totp/confirm` with a code; asking again replaces the pending secret. Refused (409) while MFA is on: turn it off first to move to another authenticator.',
        security: [{ oauth2: [] }],
        body: StartTotpBody,
        response: {
          201: TotpEnrolment,
          ...problems({ ...managementProblems, 400: 'Invalid body, or wrong current password', 409: 'MFA is already on' })
        }
      }
    },
    async (request, reply) => {
      const state = await stateOf(request)
      const alreadyOn = () => conflict('MFA is already on. Turn it off first to move to another authenticator.')
      if (state.mfaEnabled) throw alreadyOn()
      const attempt = await reauthThrottle.attempt(state.userId)
      if (!(await passwords.verify(state.passwordHash, request.body.current_password)).valid) throw wrongPassword()
      await attempt.succeeded()
      const enrolment = await mfa.startEnrolment({ id: state.userId, email: state.email })
      if (!enrolment) throw alreadyOn()
      await audit('mfa.enrolment_started', request, { method: 'totp' })
      return reply.code(201).send(enrolment)
    }
  )

  fastify.post(
    '/users/me/mfa/totp/confirm',
    {
      onRequest: asUser,
      config: { rateLimit },
      schema: {
        tags: ['Multi-factor sign-in'],
        operationId: 'confirmTotp',
        summary: 'Confirm the authenticator app: MFA is on',
        description:
          'Send a current code of the pending secret. MFA is then on: every sign-in asks for a code, and **every other session of the account ends** (this one goes on). Answers ten recovery codes, **shown only here**: each works once in place of a code, for the day the authenticator is lost.',
        security: [{ oauth2: [] }],
        body: ConfirmTotpBody,
        response: {
          200: RecoveryCodes,
          ...problems({
            ...managementProblems,
            400: 'Invalid body, or a wrong code',
            409: 'MFA is already on, no enrolment is pending, or the account changed while the request was running'
          })
        }
      }
    },
    async (request) => {
      const state = await stateOf(request)
      if (state.mfaEnabled) throw conflict('MFA is already on.')
      if (!state.secret) throw conflict('No enrolment is pending: start one with POST /users/me/mfa/totp.')
      const attempt = await reauthThrottle.attempt(state.userId)
      const match = mfa.matchCode({ userId: state.userId, secret: state.secret, lastUsedStep: state.lastUsedStep }, request.body.code, { recoveryCodes: false })
      if (match?.method !== 'totp') return refuseCode(request, 'enrolment')
      const { codes, hashes } = mfa.newRecoveryCodes(state.userId)
      await factors.enable(state.userId, {
        expectedVersion: state.securityVersion,
        keepSessionId: request.user.sessionId,
        pendingSecret: state.secret,
        step: match.step,
        recoveryCodeHashes: hashes
      })
      await attempt.succeeded()
      await audit('mfa.enabled', request, { method: 'totp' })
      return { recovery_codes: codes }
    }
  )

  fastify.post(
    '/users/me/mfa/recovery-codes',
    {
      onRequest: asUser,
      config: { rateLimit },
      schema: {
        tags: ['Multi-factor sign-in'],
        operationId: 'regenerateRecoveryCodes',
        summary: 'Replace your recovery codes',
        description:
          'Needs the current password and a code (from the authenticator, or an unused recovery code). Answers ten new recovery codes, shown only here; the earlier ones stop working, and every other session of the account ends.',
        security: [{ oauth2: [] }],
        body: CodeAndPasswordBody,
        response: {
          200: RecoveryCodes,
          ...problems({
            ...managementProblems,
            400: 'Invalid body, a wrong current password, or a wrong code',
            409: 'MFA is not on, or the account changed while the request was running'
          })
        }
      }
    },
    async (request) => {
      const state = await stateOf(request)
      if (!state.mfaEnabled) throw notOn()
      const { match, attempt } = await passwordAndCode(request, state, request.body.current_password, request.body.code, 'recovery_codes')
      const { codes, hashes } = mfa.newRecoveryCodes(state.userId)
      const change = { expectedVersion: state.securityVersion, keepSessionId: request.user.sessionId, code: match }
      await consuming(request, 'recovery_codes', () => factors.regenerateRecoveryCodes(state.userId, change, hashes))
      await attempt.succeeded()
      await audit('mfa.recovery_codes_regenerated', request, { method: match.method })
      return { recovery_codes: codes }
    }
  )

  fastify.delete(
    '/users/me/mfa/totp',
    {
      onRequest: asUser,
      config: { rateLimit },
      schema: {
        tags: ['Multi-factor sign-in'],
        operationId: 'disableMfa',
        summary: 'Turn MFA off',
        description:
          'Needs the current password and a code (from the authenticator, or an unused recovery code): a lost authenticator is no obstacle while a recovery code is left. The secret and the recovery codes are deleted, sign-ins waiting for a code are refused, and every other session of the account ends. Lost both? An admin can turn MFA off (`PATCH /users/{id}` with `mfa_enabled: false`).',
        security: [{ oauth2: [] }],
        body: CodeAndPasswordBody,
        response: {
          204: NoContent('MFA is off; every other session has ended.'),
          ...problems({
            ...managementProblems,
            400: 'Invalid body, a wrong current password, or a wrong code',
            409: 'MFA is not on, or the account changed while the request was running'
          })
        }
      }
    },
    async (request, reply) => {
      const state = await stateOf(request)
      if (!state.mfaEnabled) throw notOn()
      const { match, attempt } = await passwordAndCode(request, state, request.body.current_password, request.body.code, 'disable')
      const change = { expectedVersion: state.securityVersion, keepSessionId: request.user.sessionId, code: match }
      await consuming(request, 'disable', () => factors.disable(state.userId, change))
      await attempt.succeeded()
      await audit('mfa.disabled', request, { method: match.method, target_user_id: state.userId })
      return reply.code(204).send()
    }
  )
}

export default mfaRoutes
