// The OpenAPI 3 document (/docs/json) and Swagger UI (/docs). Its security
// scheme declares both OAuth2 flows, so the Authorize dialog can log in with
// an email and password, or as a service client.
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'
import { SCOPES } from '../../lib/scopes.js'
import { Problem } from '../../schemas/common.js'
import { Post } from '../../schemas/posts.js'
import { User } from '../../schemas/users.js'

/**
 * Swagger UI's own policy, minus what this page does not need: no other
 * hosts (`https:`, the validator), no framing, and no
 * `upgrade-insecure-requests`, which would leave the page blank wherever the
 * service is reached over plain HTTP by a name other than localhost. Calls to
 * the API (`connect-src`) and the Authorize form stay on this origin.
 */
export function docsCsp(header: string): string {
  const directives = new Map(
    header
      .split(';')
      .map((directive) => directive.trim().split(/\s+/))
      .filter(([name]) => name)
      .map(([name = '', ...sources]) => [name, sources] as const)
  )
  directives.delete('upgrade-insecure-requests')
  for (const [name, sources] of directives) {
    directives.set(name, sources.filter((source) => source !== 'https:' && source !== 'validator.swagger.io'))
  }
  directives.set('frame-ancestors', ["'none'"])
  directives.set('connect-src', ["'self'"])
  directives.set('form-action', ["'self'"])
  return [...directives].map(([name, sources]) => [name, ...sources].join(' ')).join('; ')
}

export default fp(
  async function swaggerPlugin(fastify) {
    fastify.addSchema(Problem)
    fastify.addSchema(User)
    fastify.addSchema(Post)

    await fastify.register(swagger, {
      openapi: {
        openapi: '3.0.3',
        info: {
          title: 'Blog API',
          version: '1.0.0',
          description:
            'Accounts, OAuth2 tokens (password, refresh_token and client_credentials grants) and a blog. ' +
            'Click **Authorize**, enter your email and password under `oauth2 (OAuth2, password)`, then try the routes.',
          license: { name: 'MIT', url: 'https://opensource.org/licenses/MIT' }
        },
        servers: [{ url: '/' }],
        tags: [
          { name: 'Service', description: 'Index, health and keys' },
          { name: 'Accounts', description: 'Signup, tokens, revocation and logout' },
          { name: 'Users', description: 'Your account' },
          { name: 'Administration', description: 'Managing users (admins and service clients)' },
          { name: 'Service clients', description: 'OAuth2 clients of other services' },
          { name: 'Posts', description: 'The blog' }
        ],
        components: {
          securitySchemes: {
            oauth2: {
              type: 'oauth2',
              description: 'Access tokens are RFC 9068 JWTs. Log in as a user (password) or as a service (client credentials).',
              flows: {
                password: { tokenUrl: '/auth/token', scopes: { ...SCOPES } },
                clientCredentials: { tokenUrl: '/auth/token', scopes: { ...SCOPES } }
              }
            }
          }
        }
      },
      refResolver: {
        // Shared schemas appear under components.schemas by their $id.
        buildLocalReference: (json, _baseUri, _fragment, index) => (typeof json.$id === 'string' ? json.$id : `def-${index}`)
      }
    })

    await fastify.register(swaggerUi, {
      routePrefix: '/docs',
      // No validator badge: it would load an image from a third-party host.
      uiConfig: { persistAuthorization: false, deepLinking: true, displayRequestDuration: true, validatorUrl: null },
      // Serve the UI with a CSP of its own that allows exactly its scripts and
      // styles (with the hashes of its inline ones), tightened by docsCsp.
      staticCSP: true,
      transformStaticCSP: docsCsp
    })
  },
  { name: 'swagger' }
)
