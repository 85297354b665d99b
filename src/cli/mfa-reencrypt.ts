// Re-encrypts every TOTP secret with the current MFA_ENCRYPTION_KEY, the last
// step of a key rotation:
//   1. set the new key as MFA_ENCRYPTION_KEY and the old one in
//      MFA_PREVIOUS_ENCRYPTION_KEYS, restart (both keys open, the new seals);
//   2. npm run mfa:reencrypt   (in the service's environment);
//   3. drop the old key from MFA_PREVIOUS_ENCRYPTION_KEYS, restart.
// Safe to run while the service serves: each secret is rewritten only if it is
// still the value that was read. Exits non-zero if any secret could not be
// opened (a key missing from the configuration): those accounts cannot sign
// in with their authenticator until it is given back.
import { withApp } from './context.js'

async function main() {
  const { rewritten, failed } = await withApp((fastify) => fastify.mfa.resealSecrets())
  process.stdout.write(`Re-encrypted ${rewritten} TOTP secret${rewritten === 1 ? '' : 's'} with the current key.\n`)
  if (failed.length > 0) {
    process.stderr.write(
      `${failed.length} secret${failed.length === 1 ? '' : 's'} could not be opened with the configured keys ` +
        `(MFA_ENCRYPTION_KEY, MFA_PREVIOUS_ENCRYPTION_KEYS); users: ${failed.join(', ')}\n`
    )
    process.exitCode = 1
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`mfa:reencrypt: ${(error as Error).message}\n`)
  process.exit(1)
})
