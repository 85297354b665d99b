// The first admin: from configuration at start, or from the create-admin
// command, which reads the password from standard input, never from argv.
import { spawn } from 'node:child_process'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { buildApp, fileDatabase, login, PASSWORD, TEST_APP_SECRET, TEST_MFA_KEY, TEST_PRIVATE_KEY, uniqueEmail } from './helper.js'

void fileDatabase()
const root = path.resolve(import.meta.dirname, '..')

/** Runs `npm run create-admin` as an operator would, with `input` on stdin. */
function createAdmin(args: string[], input: string, databaseUrl: string) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/create-admin.ts', ...args], {
      cwd: root,
      env: {
        ...process.env,
        // The command runs in the server's environment: same database, same key.
        DATABASE_URL: databaseUrl,
        JWT_PRIVATE_KEY: TEST_PRIVATE_KEY,
        APP_SECRET: TEST_APP_SECRET,
        MAIL_DISABLED: 'true',
        MFA_ENCRYPTION_KEY: TEST_MFA_KEY,
        ARGON2_MEMORY_KIB: '4096',
        ARGON2_TIME_COST: '2',
        ARGON2_PARALLELISM: '1',
        LOG_LEVEL: 'silent'
      },
      stdio: ['pipe', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
    child.stdin.end(input)
  })
}

describe('create-admin', () => {
  it('creates an admin whose password came from stdin', async () => {
    const { url } = await fileDatabase()
    const email = uniqueEmail('root')
    // Only the first line is the password, as with `passwd --stdin`.
    const result = await createAdmin(['--email', email, '--name', 'Site Admin'], `${PASSWORD}\nnot part of it\n`, url)
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(`Created admin ${email}.`)
    expect(result.stdout).not.toContain(PASSWORD)
    const app = await buildApp()
    try {
      const tokens = await login(app, email)
      expect(tokens.scope).toBe('posts:write posts:moderate users:read users:write clients:manage audit:read')
      const user = await app.prisma.user.findUniqueOrThrow({ where: { email } })
      expect(user).toMatchObject({ role: 'admin', fullName: 'Site Admin' })
    } finally {
      await app.close()
    }
  })

  it('refuses a weak password and a missing email', async () => {
    const { url } = await fileDatabase()
    const weak = await createAdmin(['--email', uniqueEmail('root')], 'short\n', url)
    expect(weak.code).toBe(1)
    expect(weak.stderr).toContain('at least 12 characters')
    const usage = await createAdmin([], '', url)
    expect(usage.code).toBe(2)
    expect(usage.stderr).toContain('Usage')
    for (const input of ['', '\n', '\nsecond line only\n']) {
      const empty = await createAdmin(['--email', uniqueEmail('root')], input, url)
      expect(empty.code).toBe(2)
      expect(empty.stderr).toBe('create-admin: no password given (send it as the first line of standard input)\n')
    }
  })
})

describe('ADMIN_EMAIL on start', () => {
  it('creates the first admin when none exists, and leaves things alone afterwards', async () => {
    const probe = await buildApp()
    await probe.prisma.user.updateMany({ where: { role: 'admin' }, data: { role: 'user' } })
    await probe.close()
    const email = uniqueEmail('boot')
    const app = await buildApp({ ADMIN_EMAIL: email, ADMIN_PASSWORD: PASSWORD })
    try {
      const admin = await app.prisma.user.findUniqueOrThrow({ where: { email } })
      expect(admin.role).toBe('admin')
      expect((await login(app, email)).scope).toContain('clients:manage')
    } finally {
      await app.close()
    }
    const again = await buildApp({ ADMIN_EMAIL: uniqueEmail('second'), ADMIN_PASSWORD: PASSWORD })
    try {
      expect(await again.prisma.user.count({ where: { role: 'admin' } })).toBe(1)
    } finally {
      await again.close()
    }
  })

  it('refuses to start with a weak ADMIN_PASSWORD', async () => {
    const probe = await buildApp()
    await probe.prisma.user.updateMany({ where: { role: 'admin' }, data: { role: 'user' } })
    await probe.close()
    await expect(buildApp({ ADMIN_EMAIL: uniqueEmail('weak'), ADMIN_PASSWORD: 'short' })).rejects.toThrow(/ADMIN_PASSWORD/)
  })
})
