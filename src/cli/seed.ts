// Demo data for trying the service out: a user and an admin with known demo
// passwords, a few posts, and a service client. Safe to run again: whatever
// exists already is left alone (a client's secret is shown only when the
// client is created, as the API does).
//   npm run db:seed        (also `npx prisma db seed`)
// Not for production: the demo passwords are printed here and in the README.
import { pathToFileURL } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { withApp } from './context.js'
import { serviceRegistration } from '../oauth/clients.js'

export const DEMO_USER = { email: 'demo@example.com', fullName: 'Demo User', password: 'demo-user-password' }
export const DEMO_ADMIN = { email: 'admin@example.com', fullName: 'Demo Admin', password: 'demo-admin-password' }
export const DEMO_CLIENT = { name: 'demo-service', scopes: ['users:read'] }

const DEMO_POSTS = [
  { title: 'Hello, world', content: 'The first post of the demo blog. Log in on /docs and write the second.' },
  { title: 'How logout really works', content: 'Logging out ends the session: its refresh token and every access token it produced stop working at once.' },
  { title: 'Refresh tokens rotate', content: 'Each refresh returns a new refresh token. Presenting a spent one again ends the whole session.' }
]

/** Creates what is missing of the demo data; returns what to tell the person who ran it. */
export async function seedDemoData(fastify: FastifyInstance): Promise<string[]> {
  const { usersRepository: users, postsRepository: posts, clientsRepository: clients, passwords } = fastify
  const out: string[] = []

  const ensureUser = async (account: typeof DEMO_USER, role: 'user' | 'admin') => {
    const existing = await users.findCredentials(account.email)
    if (existing) {
      out.push(`  ${role === 'admin' ? 'Admin' : 'User '}   ${account.email} (exists; password unchanged)`)
      return existing.id
    }
    const user = await users.create({
      email: account.email,
      fullName: account.fullName,
      passwordHash: await passwords.hash(account.password),
      role
    })
    // No mailbox reads a demo address: the demo accounts count as verified (REQUIRE_VERIFIED_EMAIL).
    await fastify.prisma.user.update({ where: { id: user.id }, data: { emailVerifiedAt: new Date() }, select: { id: true } })
    out.push(`  ${role === 'admin' ? 'Admin' : 'User '}   ${account.email} / ${account.password}`)
    return user.id
  }

  const userId = await ensureUser(DEMO_USER, 'user')
  await ensureUser(DEMO_ADMIN, 'admin')

  const written = await posts.list({ limit: 1, authorId: userId })
  if (written.data.length === 0) {
    for (const post of DEMO_POSTS) await posts.create(userId, post)
    out.push(`  Posts   ${DEMO_POSTS.length} by ${DEMO_USER.email}`)
  } else {
    out.push(`  Posts   ${DEMO_USER.email} has posts already; none added`)
  }

  const client = await clients.findByName(DEMO_CLIENT.name)
  if (client) {
    out.push(`  Client  ${DEMO_CLIENT.name}: client_id ${client.client_id} (exists; its secret was shown when it was created)`)
  } else {
    const created = await clients.create({ name: DEMO_CLIENT.name, ...serviceRegistration([...DEMO_CLIENT.scopes]) })
    out.push(
      `  Client  ${DEMO_CLIENT.name} (${DEMO_CLIENT.scopes.join(' ')}): client_id ${created.client_id}`,
      `          client_secret ${created.client_secret}   (shown only now)`
    )
  }
  return out
}

async function main() {
  const lines = await withApp(seedDemoData)
  process.stdout.write(['', '  Demo data:', ...lines, ''].join('\n') + '\n')
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`db:seed: ${(error as Error).message}\n`)
    process.exit(1)
  })
}
