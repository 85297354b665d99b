// Makes the service's HMAC secret (APP_SECRET; src/lib/app-secret.ts)
// available as `fastify.appSecret`. In development mode a missing secret is
// generated once and kept beside the embedded database.
import fp from 'fastify-plugin'
import { type AppSecret, loadAppSecret } from '../../lib/app-secret.js'

declare module 'fastify' {
  interface FastifyInstance {
    appSecret: AppSecret
  }
}

export default fp<{ developmentDir?: string }>(
  async function appSecretPlugin(fastify, options) {
    fastify.decorate('appSecret', loadAppSecret(fastify.config, options.developmentDir))
  },
  { name: 'app-secret', dependencies: ['config'] }
)
