// Users: accounts, their public shape, and the writes that must revoke
// sessions with them (deactivation, role change, deletion).
import type { PrismaClient } from '../generated/prisma/client.js'
import { Prisma } from '../generated/prisma/client.js'
import { conflict, notFound } from '../lib/errors.js'
import type { UserDto } from '../schemas/users.js'
import { pageIds, toPage } from './cursor.js'
import type { SessionsRepository } from './sessions.js'

const userSelect = {
  id: true,
  email: true,
  fullName: true,
  role: true,
  isActive: true,
  createdAt: true
} satisfies Prisma.UserSelect

type UserRow = Prisma.UserGetPayload<{ select: typeof userSelect }>

export function toUserDto(user: UserRow): UserDto {
  return {
    id: user.id,
    email: user.email,
    full_name: user.fullName,
    role: user.role,
    is_active: user.isActive,
    created_at: user.createdAt.toISOString()
  }
}

export const normalizeEmail = (email: string) => email.trim().toLowerCase()

function isUniqueViolation(error: unknown): boolean {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002'
}

export function createUsersRepository(prisma: PrismaClient, sessions: SessionsRepository) {
  return {
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
    async findCredentials(email: string) {
      return (
        (await prisma.user.findUnique({
          where: { email: normalizeEmail(email) },
          select: { id: true, passwordHash: true, isActive: true, role: true }
        })) ?? undefined
      )
    },

    async findCredentialsById(id: string) {
      return (
        (await prisma.user.findUnique({
          where: { id },
          select: { id: true, email: true, passwordHash: true, isActive: true, role: true }
        })) ?? undefined
      )
    },

    async get(id: string): Promise<UserDto> {
      const user = await prisma.user.findUnique({ where: { id }, select: userSelect })
      if (!user) throw notFound('User')
      return toUserDto(user)
    },

    async isAdmin(id: string): Promise<boolean> {
      const user = await prisma.user.findUnique({ where: { id }, select: { role: true, isActive: true } })
      return user?.role === 'admin' && user.isActive
    },

    async list(query: { limit: number; cursor?: string }) {
      const ids = await pageIds(prisma, 'users', query, 'asc')
      const rows = await prisma.user.findMany({ where: { id: { in: ids } }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], select: userSelect })
      return toPage(rows, query.limit, toUserDto)
    },

    async updateProfile(id: string, changes: { fullName?: string; email?: string }) {
      try {
        const user = await prisma.user.update({
          where: { id },
          data: {
            fullName: changes.fullName,
            email: changes.email === undefined ? undefined : normalizeEmail(changes.email)
          },
          select: userSelect
        })
        return toUserDto(user)
      } catch (error) {
        if (isUniqueViolation(error)) throw conflict('An account with this email already exists.')
        if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2025') throw notFound('User')
        throw error
      }
    },

    /** Sets a new password hash and ends every session but `keepSessionId`. */
    async changePassword(id: string, passwordHash: string, keepSessionId: string | undefined) {
      return sessions.withRevocation(async (tx) => {
        await tx.user.update({ where: { id }, data: { passwordHash } })
        return { result: undefined, revoked: await sessions.endUserSessions(tx, id, 'password_changed', keepSessionId) }
      })
    },

    /** Upgrades a hash made with older parameters; a lost race is harmless. */
    async rehash(id: string, passwordHash: string) {
      await prisma.user.updateMany({ where: { id }, data: { passwordHash } })
    },

    /**
     * Changes activity and role. Deactivation and role changes end every
     * session (tokens carry the scopes of the old role); the last active
     * admin cannot be demoted or deactivated.
     */
    async adminUpdate(id: string, changes: { isActive?: boolean; role?: 'user' | 'admin' }) {
      return sessions.withRevocation(async (tx) => {
        // Serialise admin changes so two demotions cannot both pass the check.
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('admin-roles'))`
        const current = await tx.user.findUnique({ where: { id }, select: { role: true, isActive: true } })
        if (!current) throw notFound('User')
        const losesAdmin =
          current.role === 'admin' &&
          current.isActive &&
          ((changes.role !== undefined && changes.role !== 'admin') || changes.isActive === false)
        if (losesAdmin) {
          const admins = await tx.user.count({ where: { role: 'admin', isActive: true } })
          if (admins <= 1) throw conflict('The last active admin cannot be demoted or deactivated.')
        }
        const user = await tx.user.update({
          where: { id },
          data: { isActive: changes.isActive, role: changes.role },
          select: userSelect
        })
        const changed =
          (changes.isActive !== undefined && changes.isActive !== current.isActive) ||
          (changes.role !== undefined && changes.role !== current.role)
        const revoked = changed ? await sessions.endUserSessions(tx, id, changes.isActive === false ? 'deactivated' : 'role_changed') : []
        return { result: toUserDto(user), revoked }
      })
    },

    /** Deletes the account with its posts and sessions (their tokens are revoked first). */
    async delete(id: string) {
      return sessions.withRevocation(async (tx) => {
        const user = await tx.user.findUnique({ where: { id }, select: { role: true, isActive: true } })
        if (!user) throw notFound('User')
        if (user.role === 'admin' && user.isActive) {
          await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('admin-roles'))`
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

    async promote(email: string) {
      return prisma.user.update({ where: { email: normalizeEmail(email) }, data: { role: 'admin', isActive: true }, select: userSelect })
    }
  }
}

export type UsersRepository = ReturnType<typeof createUsersRepository>
