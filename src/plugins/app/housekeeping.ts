// Periodic clean-up of what only grows: sessions that ended or expired (with
// their spent refresh tokens) are deleted a while after they stopped
// mattering, and sign-ins that waited for a second factor in vain once they
// cannot be used. Runs on every instance; the deletes are idempotent.
import fp from 'fastify-plugin'
import { MFA_CHALLENGE_MAX_CODES } from './mfa.js'

const INTERVAL_MS = 60 * 60 * 1000
// Ended sessions stay a day, so an operator can still look at a fresh incident.
const KEEP_ENDED_MS = 24 * 60 * 60 * 1000

export default fp(
  async function housekeepingPlugin(fastify) {
    const run = async () => {
      try {
        const pruned = await fastify.sessionsRepository.prune(new Date(Date.now() - KEEP_ENDED_MS))
        if (pruned > 0) fastify.log.info({ pruned }, 'pruned ended sessions')
        const challenges = await fastify.mfaRepository.pruneChallenges(new Date(), MFA_CHALLENGE_MAX_CODES)
        if (challenges > 0) fastify.log.info({ pruned: challenges }, 'pruned unused MFA challenges')
      } catch (error) {
        fastify.log.warn({ err: error }, 'could not prune ended sessions or MFA challenges')
      }
    }
    const timer = setInterval(() => void run(), INTERVAL_MS)
    timer.unref()
    fastify.addHook('onClose', async () => clearInterval(timer))
  },
  { name: 'housekeeping', dependencies: ['repositories'] }
)
