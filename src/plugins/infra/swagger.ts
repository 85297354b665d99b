// The OpenAPI 3 document (/docs/json) and Swagger UI (/docs; DOCS_ENABLED=false
// switches both off, while `npm run openapi` still writes the document).
//
// Routes declare what they need as `security: [{ oauth2: [scopes] }]`: an
// OAuth2 access token, however it was obtained. The document turns that into
// one security scheme per way of logging in (OAUTH2_LOGINS), so the docs
// page's Authorize dialog keeps each login apart: logging in with one does
// not show the others as authorized. Adding a way to log in (the
// authorization-code flow, say) is adding an entry to OAUTH2_LOGINS.
import { readFileSync } from 'node:fs'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'
import { SCOPES } from '../../lib/scopes.js'
import { Problem } from '../../schemas/common.js'
import { Post } from '../../schemas/posts.js'
import { User } from '../../schemas/users.js'

const TOKEN_URL = '/auth/token'

/** The logical name routes use in `security` for "an OAuth2 access token". */
const ROUTE_SCHEME = 'oauth2'

/** One scheme per way of logging in; each appears as its own form in the Authorize dialog. */
const OAUTH2_LOGINS = {
  browserSignIn: {
    type: 'oauth2',
    description:
      "Sign in on the service's own page, as apps do (authorization code with PKCE): the way for accounts with two-factor sign-in. `client_id` is `public`; leave `client_secret` empty.",
    flows: { authorizationCode: { authorizationUrl: '/oauth/authorize', tokenUrl: TOKEN_URL, scopes: { ...SCOPES } } }
  },
  userPassword: {
    type: 'oauth2',
    description: 'Log in as a user: your email as `username`, and your password. Leave `client_id` and `client_secret` empty.',
    flows: { password: { tokenUrl: TOKEN_URL, scopes: { ...SCOPES } } }
  },
  serviceClient: {
    type: 'oauth2',
    description: 'Log in as a service client: its `client_id` and `client_secret` (registered with `POST /clients`).',
    flows: { clientCredentials: { tokenUrl: TOKEN_URL, scopes: { ...SCOPES } } }
  }
} as const

/** The version of this build, as package.json says (two folders up from src/ and dist/ alike). */
function packageVersion(): string {
  const text = readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')
  const version: unknown = (JSON.parse(text) as { version?: unknown }).version
  return typeof version === 'string' ? version : '0.0.0'
}

type Json = Record<string, unknown>
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value)

/**
 * A route's schema as OpenAPI clients should read it (the route keeps its
 * own; this is a copy for the document):
 * - a query parameter with a default is optional: Ajv fills the default in,
 *   so the route's schema may list it as required, but a generated client
 *   must not demand it;
 * - `oauth2` becomes the alternatives of OAUTH2_LOGINS;
 * - a route where a token is optional (`{}` among its alternatives) declares
 *   no security, so Swagger UI shows no lock on a public route.
 */
export function schemaForClients(schema: Json): Json {
  const copy: Json = { ...schema }
  const query = schema.querystring
  if (isObject(query) && Array.isArray(query.required) && isObject(query.properties)) {
    const properties = query.properties
    copy.querystring = {
      ...query,
      required: (query.required as string[]).filter((name) => !(isObject(properties[name]) && properties[name].default !== undefined))
    }
  }
  if (Array.isArray(schema.security)) {
    const requirements = schema.security as Json[]
    if (requirements.some((requirement) => Object.keys(requirement).length === 0)) delete copy.security
    else copy.security = requirements.flatMap(perLogin)
  }
  return copy
}

function perLogin(requirement: Json): Json[] {
  const scopes = requirement[ROUTE_SCHEME]
  if (scopes === undefined) return [requirement]
  return Object.keys(OAUTH2_LOGINS).map((scheme) => ({ [scheme]: scopes }))
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
          version: packageVersion(),
          description:
            'Accounts, OAuth2 tokens (authorization_code, password, refresh_token, client_credentials and mfa-otp grants), multi-factor sign-in and a blog. ' +
            'Click **Authorize**: sign in on the service\'s own page under `browserSignIn (OAuth2, authorizationCode)` (`client_id` `public`), or enter your email and password under `userPassword (OAuth2, password)` (leave `client_id` and `client_secret` empty), ' +
            'then **Try it out** on any route. No account yet? `POST /auth/signup` below, or `npm run db:seed` for demo accounts. ' +
            'Accounts with MFA on sign in with `browserSignIn`, whose page asks for the code; the password dialog has no step for it (the password answers `403 mfa_required` ' +
            'with an `mfa_token`, and `POST /auth/token` with `grant_type=urn:blog-api:grant-type:mfa-otp`, the `mfa_token` and your code finishes the sign-in). ' +
            'Errors are RFC 9457 problem details, except at the token endpoints, which answer RFC 6749 errors.',
          license: { name: 'MIT', url: 'https://opensource.org/licenses/MIT' }
        },
        // No `servers`: the docs page and clients call the origin they loaded the document from.
        tags: [
          { name: 'Service', description: 'Index, health and keys' },
          { name: 'Accounts', description: 'Signup, tokens, revocation and logout; password reset and email verification by email' },
          { name: 'Users', description: 'Your account' },
          { name: 'Multi-factor sign-in', description: 'An authenticator app (TOTP) and recovery codes as a second factor' },
          { name: 'Administration', description: 'Managing users (admins and service clients)' },
          { name: 'Service clients', description: 'OAuth2 clients: other services, and apps users sign in to' },
          { name: 'OAuth and OpenID Connect', description: 'Browser sign-in (authorization code with PKCE), discovery, userinfo, introspection' },
          { name: 'Posts', description: 'The blog' },
          { name: 'Pages', description: 'HTML pages for browsers: the pages the links in emails open (present unless the service sends no email)' }
        ],
        components: { securitySchemes: { ...OAUTH2_LOGINS } }
      },
      transform: ({ schema, url }) => ({ schema: isObject(schema) ? schemaForClients(schema) : schema, url }),
      refResolver: {
        // Shared schemas appear under components.schemas by their $id.
        buildLocalReference: (json, _baseUri, _fragment, index) => (typeof json.$id === 'string' ? json.$id : `def-${index}`)
      }
    })

    if (!fastify.config.DOCS_ENABLED) return
    await fastify.register(swaggerUi, {
      routePrefix: '/docs',
      // The page's own title, and no "Explore" bar (BaseLayout): the page documents this API only.
      theme: { title: 'Blog API docs' },
      uiConfig: { persistAuthorization: false, deepLinking: true, displayRequestDuration: true, layout: 'BaseLayout' },
      // The authorization-code login: the built-in public client, with PKCE (S256).
      initOAuth: { clientId: 'public', usePkceWithAuthorizationCodeGrant: true },
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
  { name: 'swagger', dependencies: ['config'] }
)
