// Which database errors mean "unreachable right now" (503) rather than a
// failed query (500): Prisma's model queries and raw queries report an
// unreachable server differently, and both must be recognised.
import { PrismaPg } from '@prisma/adapter-pg'
import { createServer } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { PrismaClient } from '../src/generated/prisma/client.js'
import { isDatabaseUnavailable } from '../src/lib/database-errors.js'
import { fileDatabase } from './helper.js'

const clients: PrismaClient[] = []
afterAll(async () => {
  await Promise.all(clients.map((client) => client.$disconnect()))
})

function client(connectionString: string) {
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString, connectionTimeoutMillis: 3000 }) })
  clients.push(prisma)
  return prisma
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

const failure = (work: Promise<unknown>) => work.then(() => undefined, (error: unknown) => error)

describe('recognising an unreachable database', () => {
  it('counts model queries and raw queries against a server that is not there', async () => {
    const prisma = client(`postgresql://app:secret@127.0.0.1:${await closedPort()}/app`)
    expect(isDatabaseUnavailable(await failure(prisma.user.count()))).toBe(true)
    expect(isDatabaseUnavailable(await failure(prisma.$executeRaw`SELECT 1`))).toBe(true)
  })

  it('does not count a raw query that the database refused', async () => {
    const prisma = client((await fileDatabase()).url)
    const error = await failure(prisma.$executeRaw`INSERT INTO sessions (id) VALUES (NULL)`)
    expect(error).toBeInstanceOf(Error)
    expect(isDatabaseUnavailable(error)).toBe(false)
  })
})
