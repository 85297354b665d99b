// Periodic clean-up of what only grows: sessions that ended or expired (with
// their spent refresh tokens), browser sign-ins and authorization codes are
// deleted a while after they stopped mattering, and sign-ins that waited for a
// second factor in vain once they cannot be used. Runs on every instance; the
// deletes are idempotent.
import fp from 'fastify-plugin'
import { MFA_CHALLENGE_MAX_CODES } from './mfa.js'

const INTERVAL_MS = 60 * 60 * 1000
// Ended sessions stay a day, so an operator can still look at a fresh incident.
const KEEP_ENDED_MS = 24 * 60 * 60 * 1000

export default fp(
  async function housekeepingPlugin(fastify) {
    const prunes = {
      'ended sessions': (before: Date) => fastify.sessionsRepository.prune(before),
      'ended browser sign-ins': (before: Date) => fastify.browserSessionsRepository.prune(before),
      'spent or expired authorization codes': (before: Date) => fastify.authorizationCodesRepository.prune(before),
      // Kept no longer than they can be used.
      'expired or used-up MFA challenges': () => fastify.mfaRepository.pruneChallenges(new Date(), MFA_CHALLENGE_MAX_CODES)
    }
    const run = async () => {
      const before = new Date(Date.now() - KEEP_ENDED_MS)
      for (const [what, prune] of Object.entries(prunes)) {
        try {
          const pruned = await prune(before)
          if (pruned > 0) fastify.log.info({ pruned }, `pruned ${what}`)
        } catch (error) {
          fastify.log.warn({ err: error }, `could not prune ${what}`)
        }
      }
    }
    const timer = setInterval(() => void run(), INTERVAL_MS)
    timer.unref()
    fastify.addHook('onClose', async () => clearInterval(timer))
  },
  { name: 'housekeeping', dependencies: ['repositories'] }
)
