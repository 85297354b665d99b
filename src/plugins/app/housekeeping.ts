// Periodic clean-up of what only grows: sessions that ended or expired (with
// their spent refresh tokens), browser sign-ins, authorization codes, expired
// email links, and delivered or abandoned emails are deleted a while after
// they stopped mattering, and sign-ins that waited for a second factor in vain
// once they cannot be used. Runs on every instance; the deletes are idempotent.
import fp from 'fastify-plugin'
import { MFA_CHALLENGE_MAX_CODES } from './mfa.js'

const INTERVAL_MS = 60 * 60 * 1000
// Ended sessions stay a day, so an operator can still look at a fresh incident.
const KEEP_ENDED_MS = 24 * 60 * 60 * 1000
// Finished emails stay a week: why one was not delivered can still be looked up (mail_outbox.last_error).
const KEEP_MAIL_MS = 7 * 24 * 60 * 60 * 1000

export default fp(
  async function housekeepingPlugin(fastify) {
    // Each gets the moment now, and decides what it keeps from it.
    const prunes = {
      'ended sessions': (now: number) => fastify.sessionsRepository.prune(new Date(now - KEEP_ENDED_MS)),
      'ended browser sign-ins': (now: number) => fastify.browserSessionsRepository.prune(new Date(now - KEEP_ENDED_MS)),
      'spent or expired authorization codes': (now: number) => fastify.authorizationCodesRepository.prune(new Date(now - KEEP_ENDED_MS)),
      // Kept no longer than they can be used.
      'expired or used-up MFA challenges': (now: number) => fastify.mfaRepository.pruneChallenges(new Date(now), MFA_CHALLENGE_MAX_CODES),
      'expired email links': (now: number) => fastify.emailTokensRepository.prune(new Date(now)),
      'finished emails': (now: number) => fastify.mailOutboxRepository.prune(new Date(now - KEEP_MAIL_MS))
    }
    const run = async () => {
      const now = Date.now()
      for (const [what, prune] of Object.entries(prunes)) {
        try {
          const pruned = await prune(now)
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
