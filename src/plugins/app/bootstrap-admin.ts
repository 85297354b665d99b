// Creates the first admin from ADMIN_EMAIL and ADMIN_PASSWORD on start, when
// no active admin exists yet (or promotes that account if it exists).
import fp from 'fastify-plugin'

export default fp(
  async function bootstrapAdminPlugin(fastify) {
    const { ADMIN_EMAIL: email, ADMIN_PASSWORD: password } = fastify.config
    if (!email) return
    // Checked as the app loads, before the server touches the database.
    const weak = password === undefined ? [] : fastify.passwords.policyErrors(password, 'ADMIN_PASSWORD', email)
    if (weak.length > 0) throw new Error(`ADMIN_PASSWORD ${weak[0]?.message}`)
    fastify.addHook('onReady', async () => {
      const users = fastify.usersRepository
      if ((await users.countAdmins()) > 0) return
      if (await users.findCredentials(email)) {
        await users.promote(email)
        fastify.log.info({ email }, 'promoted the configured account to admin')
        return
      }
      if (!password) throw new Error('ADMIN_PASSWORD is required to create the ADMIN_EMAIL account')
      await users.create({ email, fullName: 'Administrator', passwordHash: await fastify.passwords.hash(password), role: 'admin' })
      fastify.log.info({ email }, 'created the first admin')
    })
  },
  { name: 'bootstrap-admin', dependencies: ['repositories', 'passwords'] }
)
