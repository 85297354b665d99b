// Second factors: a user's TOTP secret (sealed; src/lib/mfa-keys.ts), their
// recovery codes (hashes) and the sign-ins waiting for a code (challenges).
//
// Turning MFA on or off and replacing the recovery codes are changes of the
// account's security state: each runs in one transaction with
// `changeSecurityStateIn` (the version bumps, the other sessions end), so a
// sign-in or challenge in flight cannot outlive it.
//
// "Each code works once" is decided by the database, not by a read followed
// by a write: a TOTP code is accepted by a conditional update that raises the
// factor's last used time step, a recovery code by one that marks it used,
// and a challenge by deleting it. Of two requests with the same code, or the
// same challenge, the second finds the row changed and is refused.
//
// Locks are taken in one order everywhere, the account's row first, so a
// sign-in being completed and MFA being turned off cannot deadlock.
import type { Prisma, PrismaClient } from '../generated/prisma/client.js'
import { conflict } from '../lib/errors.js'
import type { EndReason, SessionsRepository } from './sessions.js'
import type { UsersRepository } from './users.js'

type Transaction = Prisma.TransactionClient

/** A code that passed its checks in memory, to be consumed in the database. */
export type CodeMatch = { method: 'totp'; step: number } | { method: 'recovery_code'; hash: string }

/** A user's second-factor state, as the MFA routes decide on it. */
export interface FactorState {
  userId: string
  email: string
  passwordHash: string
  securityVersion: number
  mfaEnabled: boolean
  /** The sealed TOTP secret, confirmed or pending; null when there is none. */
  secret: string | null
  confirmed: boolean
  lastUsedStep: number | null
}

/** A challenge, with its account as it is now. */
export interface ChallengeRow {
  id: string
  userId: string
  clientId: string
  scope: string
  /** The account's version when the password was checked. */
  securityVersion: number
  attempts: number
  expiresAt: Date
  email: string
  isActive: boolean
  mfaEnabled: boolean
  /** The account's version now. */
  userVersion: number
  /** The confirmed factor's sealed secret; null if the account has none (any more). */
  secret: string | null
  lastUsedStep: number | null
}

/** A challenge's outcome once a code matched: it completed, or the database refused it. */
export type Redemption<T> =
  | { outcome: 'completed'; result: T }
  /** The challenge was used meanwhile, or the account moved on. */
  | { outcome: 'challenge_gone' | 'account_changed' }
  /** The code was used meanwhile (or, for a recovery code, is not one of the account's). */
  | { outcome: 'code_refused' }

/** Thrown inside a transaction to roll it back with an outcome. */
class Rollback<T> extends Error {
  constructor(readonly redemption: Redemption<T>) {
    super(redemption.outcome)
  }
}

/** A code refused when consumed in a management change: the route answers it as a wrong code. */
export class CodeRefusedError extends Error {
  constructor() {
    super('code refused')
    this.name = 'CodeRefusedError'
  }
}

/** Consumes a code of the user: true if it was unused (and now is used). */
async function consumeCodeIn(tx: Transaction, userId: string, code: CodeMatch, now: Date): Promise<boolean> {
  if (code.method === 'totp') {
    const changed = await tx.$executeRaw`
      UPDATE totp_factors SET last_used_step = ${code.step}
      WHERE user_id = ${userId}::uuid AND confirmed_at IS NOT NULL
        AND (last_used_step IS NULL OR last_used_step < ${code.step})`
    return changed === 1
  }
  const { count } = await tx.mfaRecoveryCode.updateMany({
    where: { userId, codeHash: code.hash, usedAt: null },
    data: { usedAt: now }
  })
  return count === 1
}

/** Removes every second factor of the user and the sign-ins waiting for one (MFA turned off). */
export async function clearSecondFactorsIn(tx: Transaction, userId: string): Promise<void> {
  await tx.totpFactor.deleteMany({ where: { userId } })
  await tx.mfaRecoveryCode.deleteMany({ where: { userId } })
  await tx.mfaChallenge.deleteMany({ where: { userId } })
}

async function replaceRecoveryCodesIn(tx: Transaction, userId: string, hashes: string[]) {
  await tx.mfaRecoveryCode.deleteMany({ where: { userId } })
  await tx.mfaRecoveryCode.createMany({ data: hashes.map((codeHash) => ({ userId, codeHash })) })
}

/** What a change made with a code needs: the version read before the checks, the caller's session, the code. */
interface CodeChange {
  expectedVersion: number
  keepSessionId: string
  code: CodeMatch
}

export function createMfaRepository(prisma: PrismaClient, users: UsersRepository, sessions: SessionsRepository) {
  /** Applies a security change made with `code`, which is consumed in the same transaction (or the whole is refused). */
  function changeWithCode(userId: string, change: CodeChange, reason: EndReason, data: Prisma.UserUpdateManyMutationInput, then: (tx: Transaction) => Promise<void>) {
    return sessions.withRevocation(async (tx) => {
      const revoked = await users.changeSecurityStateIn(tx, userId, {
        data,
        reason,
        expectedVersion: change.expectedVersion,
        keepSessionId: change.keepSessionId
      })
      if (!(await consumeCodeIn(tx, userId, change.code, new Date()))) throw new CodeRefusedError()
      await then(tx)
      return { result: undefined, revoked }
    })
  }

  return {
    async factorState(userId: string): Promise<FactorState | undefined> {
      const user = await prisma.user.findUnique({
        where: { id: userId },
        select: { id: true, email: true, passwordHash: true, securityVersion: true, mfaEnabled: true, totpFactor: true }
      })
      if (!user) return undefined
      return {
        userId: user.id,
        email: user.email,
        passwordHash: user.passwordHash,
        securityVersion: user.securityVersion,
        mfaEnabled: user.mfaEnabled,
        secret: user.totpFactor?.secret ?? null,
        confirmed: user.totpFactor?.confirmedAt != null,
        lastUsedStep: user.totpFactor?.lastUsedStep ?? null
      }
    },

    /**
     * Keeps `secret` as the user's pending factor, replacing a pending one;
     * false if the user has a confirmed factor (MFA is on).
     */
    async savePending(userId: string, secret: string): Promise<boolean> {
      const written = await prisma.$executeRaw`
        INSERT INTO totp_factors (user_id, secret, created_at) VALUES (${userId}::uuid, ${secret}, ${new Date()}::timestamptz)
        ON CONFLICT (user_id) DO UPDATE SET secret = EXCLUDED.secret, created_at = EXCLUDED.created_at, last_used_step = NULL
        WHERE totp_factors.confirmed_at IS NULL`
      return written === 1
    },

    /**
     * Turns MFA on: the pending factor `pendingSecret` (the one the code was
     * checked against) is confirmed with the code's step as its last used
     * one, the recovery codes are replaced, every other session ends.
     */
    async enable(userId: string, input: { expectedVersion: number; keepSessionId: string; pendingSecret: string; step: number; recoveryCodeHashes: string[] }) {
      await sessions.withRevocation(async (tx) => {
        const revoked = await users.changeSecurityStateIn(tx, userId, {
          data: { mfaEnabled: true },
          reason: 'mfa_enabled',
          expectedVersion: input.expectedVersion,
          keepSessionId: input.keepSessionId
        })
        const { count } = await tx.totpFactor.updateMany({
          where: { userId, confirmedAt: null, secret: input.pendingSecret },
          data: { confirmedAt: new Date(), lastUsedStep: input.step }
        })
        // Another enrolment replaced the secret since the code was checked against it.
        if (count === 0) throw conflict('The enrolment changed while this request was running; try again.')
        await replaceRecoveryCodesIn(tx, userId, input.recoveryCodeHashes)
        return { result: undefined, revoked }
      })
    },

    /** Replaces the recovery codes (with a code); every other session ends. */
    async regenerateRecoveryCodes(userId: string, change: CodeChange, recoveryCodeHashes: string[]) {
      await changeWithCode(userId, change, 'mfa_changed', {}, (tx) => replaceRecoveryCodesIn(tx, userId, recoveryCodeHashes))
    },

    /** Turns MFA off (with a code): the factor, the recovery codes and pending sign-ins go; every other session ends. */
    async disable(userId: string, change: CodeChange) {
      await changeWithCode(userId, change, 'mfa_disabled', { mfaEnabled: false }, (tx) => clearSecondFactorsIn(tx, userId))
    },

    async unusedRecoveryCodes(userId: string): Promise<number> {
      return prisma.mfaRecoveryCode.count({ where: { userId, usedAt: null } })
    },

    /**
     * Records a sign-in waiting for a code — only if the account is still
     * active, at `securityVersion`, and has MFA on (one statement, like a
     * session's start). False when the account moved on: decide again.
     */
    async createChallenge(input: { tokenHash: string; userId: string; securityVersion: number; clientId: string; scope: string; now: Date; expiresAt: Date }): Promise<boolean> {
      const written = await prisma.$executeRaw`
        INSERT INTO mfa_challenges (id, token_hash, user_id, client_id, scope, security_version, attempts, expires_at, created_at)
        SELECT gen_random_uuid(), ${input.tokenHash}, id, ${input.clientId}, ${input.scope}, ${input.securityVersion}, 0,
               ${input.expiresAt}::timestamptz, ${input.now}::timestamptz
        FROM users
        WHERE id = ${input.userId}::uuid AND security_version = ${input.securityVersion} AND is_active AND mfa_enabled`
      return written === 1
    },

    async findChallenge(tokenHash: string): Promise<ChallengeRow | undefined> {
      const [row] = await prisma.$queryRaw<ChallengeRow[]>`
        SELECT c.id, c.user_id AS "userId", c.client_id AS "clientId", c.scope, c.security_version AS "securityVersion",
               c.attempts, c.expires_at AS "expiresAt", u.email, u.is_active AS "isActive", u.mfa_enabled AS "mfaEnabled",
               u.security_version AS "userVersion", f.secret, f.last_used_step AS "lastUsedStep"
        FROM mfa_challenges c
        JOIN users u ON u.id = c.user_id
        LEFT JOIN totp_factors f ON f.user_id = c.user_id AND f.confirmed_at IS NOT NULL
        WHERE c.token_hash = ${tokenHash}`
      return row
    },

    /**
     * Counts one more code against a live challenge before it is checked, so
     * codes sent all at once cannot exceed the limit. The attempts counted,
     * or undefined when it has none left or has expired.
     */
    async countAttempt(challengeId: string, maxAttempts: number, now: Date): Promise<number | undefined> {
      const [row] = await prisma.$queryRaw<Array<{ attempts: number }>>`
        UPDATE mfa_challenges SET attempts = attempts + 1
        WHERE id = ${challengeId}::uuid AND attempts < ${maxAttempts} AND expires_at > ${now}::timestamptz
        RETURNING attempts`
      return row?.attempts
    },

    async deleteChallenge(challengeId: string): Promise<void> {
      await prisma.mfaChallenge.deleteMany({ where: { id: challengeId } })
    },

    /**
     * Completes a challenge with a matched code, all or nothing: on the
     * account as it is now (its row read first, FOR SHARE), the challenge is
     * used up, the code consumed, and `complete` (a session's start) runs in
     * the same transaction. If any step finds things changed, nothing
     * happens: the challenge and the code stay as they were.
     */
    async redeemChallenge<T>(
      challenge: ChallengeRow,
      code: CodeMatch,
      now: Date,
      complete: (tx: Transaction) => Promise<T | undefined>
    ): Promise<Redemption<T>> {
      try {
        return await prisma.$transaction(async (tx) => {
          const fail = (redemption: Redemption<T>) => new Rollback(redemption)
          const [account] = await tx.$queryRaw<Array<{ security_version: number; is_active: boolean; mfa_enabled: boolean }>>`
            SELECT security_version, is_active, mfa_enabled FROM users WHERE id = ${challenge.userId}::uuid FOR SHARE`
          if (!account?.is_active || !account.mfa_enabled || account.security_version !== challenge.securityVersion) {
            throw fail({ outcome: 'account_changed' })
          }
          const { count } = await tx.mfaChallenge.deleteMany({ where: { id: challenge.id } })
          if (count === 0) throw fail({ outcome: 'challenge_gone' })
          if (!(await consumeCodeIn(tx, challenge.userId, code, now))) throw fail({ outcome: 'code_refused' })
          const result = await complete(tx)
          if (result === undefined) throw fail({ outcome: 'account_changed' })
          return { outcome: 'completed', result } satisfies Redemption<T>
        })
      } catch (error) {
        if (error instanceof Rollback) return error.redemption
        throw error
      }
    },

    /** Deletes challenges that can no longer be used. */
    async pruneChallenges(now: Date, maxAttempts: number): Promise<number> {
      const { count } = await prisma.mfaChallenge.deleteMany({
        where: { OR: [{ expiresAt: { lte: now } }, { attempts: { gte: maxAttempts } }] }
      })
      return count
    },

    /**
     * Rewrites every TOTP secret `reseal` answers a new value for (a key
     * rotation), each only if it is still the value that was read. Answers how
     * many were rewritten, and the users whose secret could not be rewritten.
     */
    async resealSecrets(reseal: (secret: string, userId: string) => string | undefined) {
      let rewritten = 0
      const failed: string[] = []
      let after: string | undefined
      for (;;) {
        const batch = await prisma.totpFactor.findMany({
          where: after ? { userId: { gt: after } } : {},
          orderBy: { userId: 'asc' },
          take: 500,
          select: { userId: true, secret: true }
        })
        if (batch.length === 0) break
        for (const { userId, secret } of batch) {
          let next: string | undefined
          try {
            next = reseal(secret, userId)
          } catch {
            failed.push(userId)
            continue
          }
          if (next === undefined) continue
          const { count } = await prisma.totpFactor.updateMany({ where: { userId, secret }, data: { secret: next } })
          rewritten += count
        }
        after = batch[batch.length - 1]?.userId
      }
      return { rewritten, failed }
    }
  }
}

export type MfaRepository = ReturnType<typeof createMfaRepository>
