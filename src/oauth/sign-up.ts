// Creating an account, the same way whichever door it comes through (`POST
// /auth/signup`, the signup page): the password policy, one argon2 hash, the
// audit event, and the verification email when the service sends email.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { whileClientWaits } from '../lib/client-waits.js'
import { badRequest } from '../lib/errors.js'
import type { UserDto } from '../schemas/users.js'

/** Creates the account; throws a 400 with the policy's field errors, or the 409 of a taken email. */
export async function signUp(
  request: FastifyRequest,
  reply: FastifyReply,
  input: { email: string; fullName: string; password: string }
): Promise<UserDto> {
  const fastify = request.server
  const { passwords, usersRepository: users, auditLog } = fastify
  const weak = passwords.policyErrors(input.password, 'password', input.email)
  if (weak.length > 0) throw badRequest('The password does not meet the policy.', weak)
  const passwordHash = await passwords.hash(input.password, whileClientWaits(reply))
  const user = await users.create({ email: input.email, fullName: input.fullName, passwordHash })
  await auditLog.record('user.signup', request, { userId: user.id })
  if (fastify.mail.enabled) {
    // The account exists whatever happens to its email: a failure here is logged, not answered.
    await fastify.accountEmail.welcome(user.id, user.email).catch((error: unknown) => {
      request.log.error({ err: error }, 'could not queue the verification email of a new account')
    })
  }
  return user
}
