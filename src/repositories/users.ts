// Users: accounts, their public shape, and the changes of their security
// state. Every such change (password, email, role, activity, deletion; later
// second factors) goes through `changeSecurityState`: in one transaction it
// bumps the account's security version, ends the account's sessions and
// revokes their tokens, so a login or refresh in flight cannot outlive it (see
// sessions.ts). A change decided on a state read earlier (a current password
// checked before a slow hash) passes the version it read, and is refused if
// the account moved on meanwhile.
import type { PrismaClient } from '../generated/prisma/client.js'
import { Prisma } from '../generated/prisma/client.js'
import { conflict, notFound } from '../lib/errors.js'
import type { UserDto } from '../schemas/users.js'
import { pageIds, toPage } from './cursor.js'
import { clearSecondFactorsIn } from './mfa.js'
import type { EndReason, SessionsRepository } from './sessions.js'

const userSelect = {
  id: true,
  email: true,
  emailVerifiedAt: true,
  pendingEmail: true,
  fullName: true,
  role: true,
  isActive: true,
  mfaEnabled: true,
  createdAt: true
} satisfies Prisma.UserSelect

type UserRow = Prisma.UserGetPayload<{ select: typeof userSelect }>
type Transaction = Prisma.TransactionClient
export type Role = UserRow['role']

/** What signing in and re-authenticating need of an account. */
const credentialsSelect = {
  id: true,
  email: true,
  emailVerifiedAt: true,
  passwordHash: true,
  isActive: true,
  role: true,
  securityVersion: true,
  mfaEnabled: true
} satisfies Prisma.UserSelect

export type Credentials = Prisma.UserGetPayload<{ select: typeof credentialsSelect }>

export function toUserDto(user: UserRow): UserDto {
  return {
    id: user.id,
    email: user.email,
    email_verified: user.emailVerifiedAt !== null,
    ...(user.pendingEmail === null ? {} : { pending_email: user.pendingEmail }),
    full_name: user.fullName,
    role: user.role,
    is_active: user.isActive,
    mfa_enabled: user.mfaEnabled,
    created_at: user.createdAt.toISOString()
  }
}

export const normalizeEmail = (email: string) => email.trim().toLowerCase()

function isUniqueViolation(error: unknown): boolean {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002'
}

/** The account changed between the caller's check and its change. */
const changedMeanwhile = () => conflict('The account changed while this request was running; try again.')

export interface SecurityChange {
  data?: Prisma.UserUpdateManyMutationInput
  /** Why the account's sessions end. */
  reason: EndReason
  /** Only if the account is still at this version (the caller checked something on it). */
  expectedVersion?: number
  /** The caller's own session, which goes on (at the new version). */
  keepSessionId?: string
}

export function createUsersRepository(prisma: PrismaClient, sessions: SessionsRepository) {
  /**
   * Applies a change of the account's security state inside `tx`: writes
   * `data`, bumps the security version (refused as a conflict if the account
   * is not at `expectedVersion`), ends every session but `keepSessionId` and
   * answers their ids for revocation. The account row stays locked until the
   * transaction ends, so a session being created for it waits and then sees
   * the new version. A pending email change is cancelled (unless `data` sets
   * it): a password changed after a takeover must not leave the thief's
   * address one link away from becoming the login.
   */
  async function changeSecurityStateIn(tx: Transaction, userId: string, change: SecurityChange): Promise<string[]> {
    const { count } = await tx.user.updateMany({
      where: { id: userId, ...(change.expectedVersion === undefined ? {} : { securityVersion: change.expectedVersion }) },
      data: { pendingEmail: null, ...change.data, securityVersion: { increment: 1 } }
    })
    if (count === 0) {
      throw change.expectedVersion === undefined ? notFound('User') : changedMeanwhile()
    }
    if (change.keepSessionId) {
      const { securityVersion } = await tx.user.findUniqueOrThrow({ where: { id: userId }, select: { securityVersion: true } })
      await tx.session.updateMany({ where: { id: change.keepSessionId, userId, endedAt: null }, data: { securityVersion } })
    }
    return sessions.endUserSessions(tx, userId, change.reason, change.keepSessionId)
  }

  /** `changeSecurityStateIn` as a transaction of its own, with the revocations. */
  async function changeSecurityState(userId: string, change: SecurityChange): Promise<void> {
    await sessions.withRevocation(async (tx) => ({ result: undefined, revoked: await changeSecurityStateIn(tx, userId, change) }))
  }

  return {
    changeSecurityStateIn,
    changeSecurityState,

    async create(input: { email: string; fullName: string; passwordHash: string; role?: 'user' | 'admin' }) {
      try {
        const user = await prisma.user.create({
          data: { ...input, email: normalizeEmail(input.email) },
          select: userSelect
        })
        return toUserDto(user)
      } catch (error) {
        if (isUniqueViolation(error)) throw conflict('An account with this email already exists.')
        throw error
      }
    },

    /** What a login needs; undefined for an unknown email. */
    async findCredentials(email: string): Promise<Credentials | undefined> {
      return (await prisma.user.findUnique({ where: { email: normalizeEmail(email) }, select: credentialsSelect })) ?? undefined
    },

    async findCredentialsById(id: string): Promise<Credentials | undefined> {
      return (await prisma.user.findUnique({ where: { id }, select: credentialsSelect })) ?? undefined
    },

    async get(id: string): Promise<UserDto> {
      const user = await prisma.user.findUnique({ where: { id }, select: userSelect })
      if (!user) throw notFound('User')
      return toUserDto(user)
    },

    async list(query: { limit: number; cursor?: string }) {
      const ids = await pageIds(prisma, 'users', query, 'asc')
      const rows = await prisma.user.findMany({ where: { id: { in: ids } }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], select: userSelect })
      return toPage(rows, query.limit, toUserDto)
    },

    /** Changes what is not security state: the name. */
    async rename(id: string, fullName: string) {
      try {
        return toUserDto(await prisma.user.update({ where: { id }, data: { fullName }, select: userSelect }))
      } catch (error) {
        if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2025') throw notFound('User')
        throw error
      }
    },

    /** Changes the login email at once (only when the service sends no email); every other session ends. */
    async changeEmail(id: string, email: string, expectedVersion: number, keepSessionId: string) {
      try {
        await changeSecurityState(id, { data: { email: normalizeEmail(email) }, reason: 'email_changed', expectedVersion, keepSessionId })
      } catch (error) {
        if (isUniqueViolation(error)) throw conflict('An account with this email already exists.')
        throw error
      }
    },

    /** Sets a new password hash; every session but `keepSessionId` ends. */
    async changePassword(id: string, passwordHash: string, expectedVersion: number, keepSessionId: string | undefined) {
      await changeSecurityState(id, { data: { passwordHash }, reason: 'password_changed', expectedVersion, keepSessionId })
    },

    /**
     * Upgrades a hash made with older parameters — only while the account
     * still has the hash that was verified: a login with the old password that
     * finishes after a password change must not write the old password back.
     * Not a change of security state: the password stays the same.
     */
    async rehash(id: string, verifiedHash: string, passwordHash: string) {
      await prisma.user.updateMany({ where: { id, passwordHash: verifiedHash }, data: { passwordHash } })
    },

    /**
     * Changes activity and role, or turns MFA off (an admin's recovery path
     * for a user who lost every second factor), deciding on the account as it
     * is in the transaction (locked). `authorize` sees the current role first
     * and may refuse. Any change ends every session (tokens carry the old
     * role's scopes); the last active admin cannot be demoted or deactivated.
     */
    async adminUpdate(
      id: string,
      changes: { isActive?: boolean; role?: Role; mfaEnabled?: false },
      authorize: (current: { role: Role; isActive: boolean }) => void
    ) {
      return sessions.withRevocation(async (tx) => {
        // Serialise admin changes so two demotions cannot both pass the check.
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('admin-roles'))`
        const [current] = await tx.$queryRaw<Array<{ role: Role; is_active: boolean; mfa_enabled: boolean }>>`
          SELECT role::text AS role, is_active, mfa_enabled FROM users WHERE id = ${id}::uuid FOR UPDATE`
        if (!current) throw notFound('User')
        authorize({ role: current.role, isActive: current.is_active })
        const losesAdmin =
          current.role === 'admin' &&
          current.is_active &&
          ((changes.role !== undefined && changes.role !== 'admin') || changes.isActive === false)
        if (losesAdmin) {
          const admins = await tx.user.count({ where: { role: 'admin', isActive: true } })
          if (admins <= 1) throw conflict('The last active admin cannot be demoted or deactivated.')
        }
        const changed =
          (changes.isActive !== undefined && changes.isActive !== current.is_active) ||
          (changes.role !== undefined && changes.role !== current.role)
        const resetsMfa = changes.mfaEnabled === false && current.mfa_enabled
        const revoked = changed || resetsMfa
          ? await changeSecurityStateIn(tx, id, {
              data: { isActive: changes.isActive, role: changes.role, mfaEnabled: changes.mfaEnabled },
              reason: changes.isActive === false ? 'deactivated' : changed ? 'role_changed' : 'mfa_reset'
            })
          : []
        if (resetsMfa) await clearSecondFactorsIn(tx, id)
        const user = await tx.user.findUniqueOrThrow({ where: { id }, select: userSelect })
        return { result: { user: toUserDto(user), mfaReset: resetsMfa }, revoked }
      })
    },

    /**
     * Deletes the account with its posts and sessions (their tokens are
     * revoked in the same transaction) — if it is still at `expectedVersion`.
     */
    async delete(id: string, expectedVersion: number) {
      return sessions.withRevocation(async (tx) => {
        // The same lock order as adminUpdate (the admin lock, then the row), so the two never deadlock.
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('admin-roles'))`
        const [user] = await tx.$queryRaw<Array<{ role: Role; is_active: boolean; security_version: number }>>`
          SELECT role::text AS role, is_active, security_version FROM users WHERE id = ${id}::uuid FOR UPDATE`
        if (!user) throw notFound('User')
        if (user.security_version !== expectedVersion) throw changedMeanwhile()
        if (user.role === 'admin' && user.is_active) {
          const admins = await tx.user.count({ where: { role: 'admin', isActive: true } })
          if (admins <= 1) throw conflict('The last active admin cannot be deleted.')
        }
        const revoked = await sessions.endUserSessions(tx, id, 'account_deleted')
        await tx.user.delete({ where: { id } })
        return { result: undefined, revoked }
      })
    },

    async countAdmins() {
      return prisma.user.count({ where: { role: 'admin', isActive: true } })
    },

    /** Makes the account an active admin (a change of security state: its sessions end). */
    async promote(email: string) {
      const account = await prisma.user.findUnique({ where: { email: normalizeEmail(email) }, select: { id: true } })
      if (!account) throw notFound('User')
      await changeSecurityState(account.id, { data: { role: 'admin', isActive: true }, reason: 'role_changed' })
    }
  }
}

export type UsersRepository = ReturnType<typeof createUsersRepository>
