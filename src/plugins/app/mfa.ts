// The second-factor check (`fastify.mfa`) that every way of signing in goes
// through, and the pieces the MFA routes build on.
//
// Signing in to an account with MFA takes two steps. The first (a password
// login) ends, once the password is right, with `challenge`: a single-use
// `mfa_token`, stored only as a hash, bound to the account's security
// version, the client and the scope of that step, alive for 5 minutes and
// for at most 5 codes. The second, `redeem`, checks a code against it: a TOTP
// code of the current step or one either side, never one already accepted, or
// an unused recovery code. It counts towards the account's login lockout like
// a password (the same buckets, so a right password does not reset the count
// of wrong codes), and when the code is right it uses up the challenge,
// consumes the code and lets the caller write what the sign-in produces (a
// session) in one transaction, on the account as it is then.
//
// TOTP secrets are sealed with MFA_ENCRYPTION_KEY (src/lib/mfa-keys.ts);
// recovery codes are stored as hashes (src/lib/recovery-codes.ts).
import { randomBytes } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Prisma } from '../../generated/prisma/client.js'
import { loadMfaKeys, type SecretBox } from '../../lib/mfa-keys.js'
import { hashOpaqueToken } from '../../lib/opaque-tokens.js'
import { hashRecoveryCode, newRecoveryCodes, normalizeRecoveryCode } from '../../lib/recovery-codes.js'
import { newTotpSecret, totpStep, totpUri, looksLikeTotp } from '../../lib/totp.js'
import type { AuditEntry } from '../../repositories/audit.js'
import type { CodeMatch } from '../../repositories/mfa.js'
import { AMR_PASSWORD_AND_OTP } from '../../repositories/sessions.js'
import type { LoginAttempt } from './login-throttle.js'

export const MFA_TOKEN_PREFIX = 'bapi_mfa_'
export const MFA_CHALLENGE_TTL_SECONDS = 5 * 60
export const MFA_CHALLENGE_MAX_CODES = 5
/**
 * What a challenge of the browser sign-in page is bound to in place of a
 * client: no client has this id, so its mfa_token is of no use at the token
 * endpoint, nor a token endpoint's on the page.
 */
export const BROWSER_SIGN_IN = 'browser-sign-in'

/** A sign-in whose second factor was checked: what its session is made of. */
export interface VerifiedSignIn {
  userId: string
  /** The account's version when the password was checked (and still now). */
  securityVersion: number
  clientId: string
  scope: string
  amr: string[]
}

export type RedeemOutcome<T> =
  /** `attempt.succeeded(reply)` once the caller has answered with what `complete` produced. */
  | { outcome: 'completed'; result: T; method: CodeMatch['method']; attempt: LoginAttempt }
  /** Unknown, expired, used, out of codes, or another client's: sign in again. */
  | { outcome: 'invalid_token' }
  /** The account changed since the password was checked (MFA turned off, password changed, ...): sign in again. */
  | { outcome: 'account_changed' }
  /** `exhausted`: that was the token's last code. */
  | { outcome: 'wrong_code'; exhausted: boolean }

/** A user's TOTP factor, as a code is checked against it. */
interface Factor {
  userId: string
  /** Sealed. */
  secret: string
  lastUsedStep: number | null
}

export interface MfaService {
  /** The time codes and challenges are judged at (replaceable, so tests can step through time). */
  clock: { now(): number }
  readonly keys: SecretBox
  /** A new pending TOTP secret for the user; undefined when MFA is already on. */
  startEnrolment(user: { id: string; email: string }): Promise<{ secret: string; otpauth_uri: string } | undefined>
  /**
   * What `code` is for `factor`, if it can be right: a TOTP code of a step
   * after the last accepted one, or (with `recoveryCodes`) a well-formed
   * recovery code, whose existence is checked when it is consumed.
   */
  matchCode(factor: Factor, code: string, options: { recoveryCodes: boolean }): CodeMatch | undefined
  /** A new set of recovery codes for the user: the codes to show, the hashes to store. */
  newRecoveryCodes(userId: string): { codes: string[]; hashes: string[] }
  /** Starts the second step of a sign-in whose password was right; undefined when the account moved on (decide again). */
  challenge(request: FastifyRequest, signIn: Omit<VerifiedSignIn, 'amr'>): Promise<string | undefined>
  /**
   * Checks `code` for the sign-in of `mfaToken`; when it is right, runs
   * `complete` (the session's start) in the transaction that consumes the
   * token and the code. `complete` answering undefined (the account moved
   * on) undoes everything.
   */
  redeem<T>(
    request: FastifyRequest,
    input: { mfaToken: string; code: string; clientId: string },
    complete: (tx: Prisma.TransactionClient, signIn: VerifiedSignIn) => Promise<T | undefined>
  ): Promise<RedeemOutcome<T>>
  /** Re-encrypts every TOTP secret sealed under an earlier key with the current one (a key rotation). */
  resealSecrets(): Promise<{ rewritten: number; failed: string[] }>
}

declare module 'fastify' {
  interface FastifyInstance {
    mfa: MfaService
  }
}

/** The audit columns of a client: none for the public client (the column holds registered clients' ids). */
const clientColumn = (clientId: string): AuditEntry => (clientId === 'public' || clientId === BROWSER_SIGN_IN ? {} : { clientId })

export default fp<{ developmentDir?: string }>(
  async function mfaPlugin(fastify, options) {
    const { config, mfaRepository: repository, auditLog, loginThrottle } = fastify
    const keys = loadMfaKeys(config, options.developmentDir)

    /** The plain secret of a factor; a secret that does not open is the operator's to fix (a key left out). */
    function openSecret(factor: Factor): string {
      try {
        return keys.open(factor.secret, factor.userId)
      } catch (error) {
        fastify.log.error({ err: error, userId: factor.userId }, 'cannot decrypt a TOTP secret: is the key it was sealed with in MFA_ENCRYPTION_KEY or MFA_PREVIOUS_ENCRYPTION_KEYS?')
        throw error
      }
    }

    const service: MfaService = {
      clock: { now: () => Date.now() },
      keys,

      async startEnrolment(user) {
        const secret = newTotpSecret()
        if (!(await repository.savePending(user.id, keys.seal(secret, user.id)))) return undefined
        return { secret, otpauth_uri: totpUri({ issuer: config.MFA_ISSUER, account: user.email, secret }) }
      },

      matchCode(factor, code, { recoveryCodes }) {
        if (looksLikeTotp(code)) {
          const step = totpStep(openSecret(factor), code, service.clock.now())
          return step !== undefined && (factor.lastUsedStep === null || step > factor.lastUsedStep) ? { method: 'totp', step } : undefined
        }
        const normalized = recoveryCodes ? normalizeRecoveryCode(code) : undefined
        return normalized ? { method: 'recovery_code', hash: hashRecoveryCode(factor.userId, normalized) } : undefined
      },

      newRecoveryCodes(userId) {
        const codes = newRecoveryCodes()
        return { codes, hashes: codes.map((code) => hashRecoveryCode(userId, code.replace(/-/g, ''))) }
      },

      async challenge(request, signIn) {
        const token = MFA_TOKEN_PREFIX + randomBytes(32).toString('base64url')
        const now = service.clock.now()
        const created = await repository.createChallenge({
          ...signIn,
          tokenHash: hashOpaqueToken(token),
          now: new Date(now),
          expiresAt: new Date(now + MFA_CHALLENGE_TTL_SECONDS * 1000)
        })
        if (!created) return undefined
        await auditLog.record('login.mfa_required', request, { userId: signIn.userId, ...clientColumn(signIn.clientId) })
        return token
      },

      async redeem(request, { mfaToken, code, clientId }, complete) {
        const now = new Date(service.clock.now())
        const challenge = mfaToken.startsWith(MFA_TOKEN_PREFIX) ? await repository.findChallenge(hashOpaqueToken(mfaToken)) : undefined
        if (!challenge || challenge.expiresAt <= now || challenge.attempts >= MFA_CHALLENGE_MAX_CODES) return { outcome: 'invalid_token' }
        const actor = { userId: challenge.userId, ...clientColumn(clientId) }
        const fail = (details: Record<string, string | number | boolean>) =>
          auditLog.record('mfa.failure', request, { ...actor, details: { purpose: 'sign_in', ...details } })
        if (challenge.clientId !== clientId) {
          await fail({ reason: 'wrong_client' })
          return { outcome: 'invalid_token' }
        }
        const changed = !challenge.isActive || !challenge.mfaEnabled || challenge.userVersion !== challenge.securityVersion
        if (changed || challenge.secret === null) {
          await repository.deleteChallenge(challenge.id)
          return { outcome: 'account_changed' }
        }

        // Counted like a password (429 while locked), and against the token, before the code is looked at.
        const attempt = await loginThrottle.attempt(request, challenge.email)
        const counted = await repository.countAttempt(challenge.id, MFA_CHALLENGE_MAX_CODES, now)
        if (counted === undefined) return { outcome: 'invalid_token' }
        const match = service.matchCode({ userId: challenge.userId, secret: challenge.secret, lastUsedStep: challenge.lastUsedStep }, code, { recoveryCodes: true })
        const refused = async (): Promise<RedeemOutcome<never>> => {
          attempt.failed()
          await fail({ reason: 'wrong_code', ...(match ? { method: match.method } : {}), attempts: counted })
          if (attempt.lockSeconds > 0) {
            await auditLog.record('login.locked', request, { ...actor, details: { lock_seconds: attempt.lockSeconds } })
          }
          return { outcome: 'wrong_code', exhausted: counted >= MFA_CHALLENGE_MAX_CODES }
        }
        if (!match) return refused()

        const signIn: VerifiedSignIn = {
          userId: challenge.userId,
          securityVersion: challenge.securityVersion,
          clientId: challenge.clientId,
          scope: challenge.scope,
          amr: AMR_PASSWORD_AND_OTP
        }
        const redemption = await repository.redeemChallenge(challenge, match, now, (tx) => complete(tx, signIn))
        switch (redemption.outcome) {
          case 'code_refused':
            return refused()
          case 'challenge_gone':
            return { outcome: 'invalid_token' }
          case 'account_changed':
            return { outcome: 'account_changed' }
          case 'completed':
            await auditLog.record('mfa.success', request, { ...actor, details: { purpose: 'sign_in', method: match.method } })
            if (match.method === 'recovery_code') {
              const remaining = await repository.unusedRecoveryCodes(challenge.userId)
              await auditLog.record('mfa.recovery_code_used', request, { ...actor, details: { purpose: 'sign_in', remaining } })
            }
            return { outcome: 'completed', result: redemption.result, method: match.method, attempt }
        }
      },

      resealSecrets() {
        return repository.resealSecrets((secret, userId) => (keys.isCurrent(secret) ? undefined : keys.seal(keys.open(secret, userId), userId)))
      }
    }
    fastify.decorate('mfa', service)
  },
  { name: 'mfa', dependencies: ['config', 'repositories', 'login-throttle'] }
)
