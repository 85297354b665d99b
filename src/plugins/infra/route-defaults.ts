// What every route gets unless it says otherwise, applied as each route is
// declared (before any other plugin's onRoute hook sees it):
// - Hook arrays of its own. Plugins such as @fastify/rate-limit add their hook
//   by pushing into the route's `onRequest` array; routes that shared one array
//   (`onRequest: asUser`) then all got the limit of one of them — `GET
//   /users/me` answered 429 after twenty password changes. Copying the arrays
//   here makes that sharing harmless wherever it is written.
// - A small body limit (16 KiB). Only the routes that need more (posts) raise
//   it, so a large body costs parsing time on them alone; none goes beyond
//   BODY_LIMIT.
import type { RouteOptions } from 'fastify'
import fp from 'fastify-plugin'

export const SMALL_BODY_LIMIT = 16 * 1024

const HOOKS = [
  'onRequest',
  'preParsing',
  'preValidation',
  'preHandler',
  'preSerialization',
  'onSend',
  'onResponse',
  'onTimeout',
  'onError',
  'onRequestAbort'
] as const satisfies ReadonlyArray<keyof RouteOptions>

export default fp(
  async function routeDefaultsPlugin(fastify) {
    fastify.addHook('onRoute', (route) => {
      const hooks = route as unknown as Record<string, unknown>
      for (const name of HOOKS) {
        const value = hooks[name]
        if (Array.isArray(value)) hooks[name] = [...(value as unknown[])]
      }
      route.bodyLimit = Math.min(route.bodyLimit ?? SMALL_BODY_LIMIT, fastify.config.BODY_LIMIT)
    })
  },
  { name: 'route-defaults', dependencies: ['config'] }
)
