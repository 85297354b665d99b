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
            'Click **Authorize**, enter your email and password under `oauth2 (OAuth2, password)` (leave `client_id` and `client_secret` empty), ' +
            'then **Try it out** on any route. No account yet? `POST /auth/signup` below, or `npm run db:seed` for demo accounts. ' +
            'Errors are RFC 9457 problem details, except at the token endpoints, which answer RFC 6749 errors.',
          license: { name: 'MIT', url: 'https://opensource.org/licenses/MIT' }
        },
        servers: [{ url: '/' }],
        tags: [
          { name: 'Service', description: 'Index, health and keys' },
          { name: 'Accounts', description: 'Signup, tokens, revocation and logout; password reset and email verification by email' },
          { name: 'Users', description: 'Your account' },
          { name: 'Administration', description: 'Managing users (admins and service clients)' },
          { name: 'Service clients', description: 'OAuth2 clients of other services' },
          { name: 'Posts', description: 'The blog' },
          { name: 'Pages', description: 'HTML pages for browsers: the pages the links in emails open (present unless the service sends no email)' }
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
      uiConfig: { persistAuthorization: false, deepLinking: true, displayRequestDuration: true },
      // The UI's own policy, replacing the API's `default-src 'none'` on the
      // docs routes only: its scripts, styles and the calls of "Try it out"
      // come from this origin, nothing else. Unlike the package's default, no
      // `upgrade-insecure-requests`: on a plain-HTTP address other than
      // localhost it would turn every request of the page into a failing HTTPS
      // one. test/docs-browser.test.ts fails on any violation.
      staticCSP: {
        'default-src': ["'self'"],
        'base-uri': ["'self'"],
        'connect-src': ["'self'"],
        'font-src': ["'self'", 'data:'],
        'form-action': ["'self'"],
        'frame-ancestors': ["'none'"],
        'img-src': ["'self'", 'data:'],
        'object-src': ["'none'"],
        'script-src': ["'self'"],
        'script-src-attr': ["'none'"],
        // The one inline <style> of Swagger UI's bundle: the colours of its SVG logo.
        'style-src': ["'self'", "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='"]
      }
    })
  },
  { name: 'swagger' }
)
