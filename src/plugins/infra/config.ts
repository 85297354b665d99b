// Makes the validated configuration available as `fastify.config`.
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

export default fp<{ config: Config }>(
  async function configPlugin(fastify, options) {
    fastify.decorate('config', options.config)
  },
  { name: 'config' }
)
