// Creates the first (or another) admin account, or promotes an existing one:
//   npm run create-admin -- --email admin@example.com [--name "Site Admin"]
// The password is read from standard input (prompted for, hidden, on a
// terminal), never from the command line where `ps` and shell history see it.
// Like `passwd --stdin`, only the first line counts: `printf 'pw\n' | …` and
// a here-document give the same password, and a second line is not part of it.
import { parseArgs } from 'node:util'
import { createInterface } from 'node:readline'
import { Writable } from 'node:stream'
import { withApp } from './context.js'

/** The first line of piped standard input, without its line ending. */
async function firstLine(): Promise<string> {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
  for await (const line of lines) {
    lines.close()
    return line
  }
  return ''
}

async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) return firstLine()
  // Readline echoes into a stream that drops everything: the password stays unseen.
  const muted = new Writable({ write: (_chunk, _encoding, done) => done() })
  process.stdout.write('Password: ')
  const prompt = createInterface({ input: process.stdin, output: muted, terminal: true })
  const password = await new Promise<string>((resolve) => prompt.question('', resolve))
  prompt.close()
  process.stdout.write('\n')
  return password
}

async function main() {
  const { values } = parseArgs({ options: { email: { type: 'string' }, name: { type: 'string' } } })
  if (!values.email) {
    process.stderr.write('Usage: npm run create-admin -- --email admin@example.com [--name "Site Admin"]  (password on stdin)\n')
    process.exit(2)
  }
  const email = values.email
  const password = await readPassword()
  if (password === '') {
    process.stderr.write('create-admin: no password given (send it as the first line of standard input)\n')
    process.exit(2)
  }
  const result = await withApp(async (fastify) => {
    const existing = await fastify.usersRepository.findCredentials(email)
    if (existing) {
      await fastify.usersRepository.promote(email)
      return `Promoted ${email} to admin (its password is unchanged).`
    }
    const weak = fastify.passwords.policyErrors(password, 'password', email)
    if (weak.length > 0) throw new Error(`The password ${weak[0]?.message}.`)
    await fastify.usersRepository.create({
      email,
      fullName: values.name ?? 'Administrator',
      passwordHash: await fastify.passwords.hash(password),
      role: 'admin'
    })
    return `Created admin ${email}.`
  })
  process.stdout.write(`${result}\n`)
}

main().catch((error: unknown) => {
  process.stderr.write(`create-admin: ${(error as Error).message}\n`)
  process.exit(1)
})
