// The tokens of the links sent by email: a password reset, the verification of
// the account's email, the confirmation of a new one. Each is 256 random bits
// (lib/opaque-tokens.ts), stored only as its SHA-256 hash, at most one per
// account and kind (a new one replaces the earlier), and it works once, before
// it expires, and only while the account is active and at the security version
// the token was made at. So any change of the account's security state — a
// password changed by any route, an email change, a role change — kills every
// link sent before it, without a rule per route.
//
// What a link does happens in the transaction that spends its token, with the
// account row locked first (as every writer of these tokens locks it), so two
// uses of one link cannot both succeed and a change racing the link is either
// seen or waits.
import type { EmailTokenKind, Prisma, PrismaClient } from '../generated/prisma/client.js'
import { Prisma as PrismaNamespace } from '../generated/prisma/client.js'
import { EMAIL_TOKEN_PREFIX, hashOpaqueToken, newOpaqueToken, RESET_TOKEN_PREFIX } from '../lib/opaque-tokens.js'
import type { SessionsRepository } from './sessions.js'
import type { UsersRepository } from './users.js'

type Transaction = Prisma.TransactionClient
export type { EmailTokenKind }

/** What a token of each kind starts with: the reset pages refuse a verification token unread, and scanners tell them apart. */
const PREFIX: Record<EmailTokenKind, string> = {
  password_reset: RESET_TOKEN_PREFIX,
  email_verification: EMAIL_TOKEN_PREFIX,
  email_change: EMAIL_TOKEN_PREFIX
}

/** The only shape a token this service makes can have; anything else is refused before a lookup. */
const TOKEN_SHAPE = /^bapi_(pr|ev)_[A-Za-z0-9_-]{43}$/

/** A token that may still be used, with what its use needs of the account. */
export interface LiveToken {
  id: string
  kind: EmailTokenKind
  /** The address the link was sent to. */
  email: string
  securityVersion: number
  sessionId: string | null
  userId: string
  /** The account's login email now. */
  accountEmail: string
  emailVerified: boolean
}

/** The outcome of using a verification or email-change link. */
export type VerifyOutcome =
  | { outcome: 'verified' | 'changed'; userId: string; email: string; previousEmail: string }
  /** The new address belongs to another account by now: the change is cancelled. */
  | { outcome: 'taken'; userId: string; email: string }

interface LockedAccount {
  email: string
  pending_email: string | null
  is_active: boolean
  security_version: number
}

function isUniqueViolation(error: unknown): boolean {
  return error instanceof PrismaNamespace.PrismaClientKnownRequestError && error.code === 'P2002'
}

export function createEmailTokensRepository(prisma: PrismaClient, users: UsersRepository, sessions: SessionsRepository) {
  /**
   * Locks the account row (the order every writer of tokens follows: account,
   * then token). NO KEY: rows that only reference the account (a new outbox
   * row) are not held up by it.
   */
  async function lockAccount(tx: Transaction, userId: string): Promise<LockedAccount | undefined> {
    const [account] = await tx.$queryRaw<LockedAccount[]>`
      SELECT email, pending_email, is_active, security_version FROM users WHERE id = ${userId}::uuid FOR NO KEY UPDATE`
    return account
  }

  /** Deletes the token if it is still the one that was checked; whether it was. */
  async function spend(tx: Transaction, token: LiveToken, now: Date): Promise<boolean> {
    const { count } = await tx.emailToken.deleteMany({
      where: { id: token.id, securityVersion: token.securityVersion, expiresAt: { gt: now } }
    })
    return count === 1
  }

  return {
    /**
     * Makes the account's token of `kind`, replacing any earlier one (its link
     * stops working), in the caller's transaction, which holds the account row.
     * Answers the token itself: it exists only here and in the email.
     */
    async issue(
      tx: Transaction,
      input: {
        userId: string
        kind: EmailTokenKind
        email: string
        securityVersion: number
        sessionId: string | null
        issuedAt: Date
        expiresAt: Date
      }
    ): Promise<string> {
      const { token, hash } = newOpaqueToken(PREFIX[input.kind])
      const fields = {
        tokenHash: hash,
        email: input.email,
        securityVersion: input.securityVersion,
        sessionId: input.sessionId,
        createdAt: input.issuedAt,
        expiresAt: input.expiresAt
      }
      await tx.emailToken.upsert({
        where: { userId_kind: { userId: input.userId, kind: input.kind } },
        create: { userId: input.userId, kind: input.kind, ...fields },
        update: fields,
        select: { id: true }
      })
      return token
    },

    /**
     * The token, if it is one of `kinds` and may still be used: not expired,
     * its account active and at the token's security version. Malformed,
     * unknown, used, expired and outdated tokens are all alike: undefined.
     */
    async find(token: string, kinds: EmailTokenKind[], now = new Date()): Promise<LiveToken | undefined> {
      if (!TOKEN_SHAPE.test(token)) return undefined
      const row = await prisma.emailToken.findUnique({
        where: { tokenHash: hashOpaqueToken(token) },
        select: {
          id: true,
          kind: true,
          email: true,
          securityVersion: true,
          sessionId: true,
          expiresAt: true,
          user: { select: { id: true, email: true, isActive: true, securityVersion: true, emailVerifiedAt: true } }
        }
      })
      if (!row || !kinds.includes(row.kind) || row.expiresAt <= now) return undefined
      if (!row.user.isActive || row.user.securityVersion !== row.securityVersion) return undefined
      return {
        id: row.id,
        kind: row.kind,
        email: row.email,
        securityVersion: row.securityVersion,
        sessionId: row.sessionId,
        userId: row.user.id,
        accountEmail: row.user.email,
        emailVerified: row.user.emailVerifiedAt !== null
      }
    },

    /**
     * Spends a reset token and sets the new password: a change of security
     * state, so every session of the account ends (and any other link sent
     * before dies with the version). The link proved the mailbox, so the email
     * counts as verified. False when the token was spent or outdated meanwhile.
     */
    async resetPassword(token: LiveToken, passwordHash: string): Promise<boolean> {
      const now = new Date()
      return sessions.withRevocation(async (tx) => {
        const account = await lockAccount(tx, token.userId)
        const usable = account?.is_active === true && account.security_version === token.securityVersion
        if (!usable || !(await spend(tx, token, now))) return { result: false, revoked: [] }
        const revoked = await users.changeSecurityStateIn(tx, token.userId, {
          data: { passwordHash, ...(token.emailVerified ? {} : { emailVerifiedAt: now }) },
          reason: 'password_reset',
          expectedVersion: token.securityVersion
        })
        return { result: true, revoked }
      })
    },

    /**
     * Uses a verification link: the account's email becomes verified, or its
     * pending new email becomes its login (a change of security state: every
     * session ends but the one that asked for the change). A new address taken
     * by another account meanwhile cancels the change. Undefined when the token
     * was spent or outdated meanwhile, or is not for the pending address.
     */
    async verify(token: LiveToken): Promise<VerifyOutcome | undefined> {
      const now = new Date()
      try {
        return await sessions.withRevocation<VerifyOutcome | undefined>(async (tx) => {
          const account = await lockAccount(tx, token.userId)
          if (!account?.is_active || account.security_version !== token.securityVersion) return { result: undefined, revoked: [] }
          const target = token.kind === 'email_change' ? account.pending_email : account.email
          if (target !== token.email || !(await spend(tx, token, now))) return { result: undefined, revoked: [] }
          const ids = { userId: token.userId, email: token.email, previousEmail: account.email }
          if (token.kind === 'email_verification') {
            await tx.user.update({ where: { id: token.userId }, data: { emailVerifiedAt: now }, select: { id: true } })
            return { result: { outcome: 'verified', ...ids }, revoked: [] }
          }
          const revoked = await users.changeSecurityStateIn(tx, token.userId, {
            data: { email: token.email, emailVerifiedAt: now },
            reason: 'email_changed',
            expectedVersion: token.securityVersion,
            keepSessionId: token.sessionId ?? undefined
          })
          return { result: { outcome: 'changed', ...ids }, revoked }
        })
      } catch (error) {
        if (!isUniqueViolation(error)) throw error
        // Another account has the address now: the change can never happen, so it ends here.
        await prisma.$transaction(async (tx) => {
          await lockAccount(tx, token.userId)
          await tx.user.updateMany({ where: { id: token.userId, pendingEmail: token.email }, data: { pendingEmail: null } })
          await tx.emailToken.deleteMany({ where: { id: token.id } })
        })
        return { outcome: 'taken', userId: token.userId, email: token.email }
      }
    },

    /** Deletes tokens that expired before `before`; they can never be used. */
    async prune(before: Date): Promise<number> {
      const { count } = await prisma.emailToken.deleteMany({ where: { expiresAt: { lt: before } } })
      return count
    }
  }
}

export type EmailTokensRepository = ReturnType<typeof createEmailTokensRepository>
