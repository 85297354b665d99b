// OAuth clients as the OAuth wing sees them: registered ones (a service with
// client credentials, or an app that users sign in to) and the built-in
// public client `public` (the docs page, scripts and first-party tools), and
// the rules a registration must follow (RFC 6749 §2, RFC 8252, OAuth 2.1).
import type { Config } from '../config.js'
import type { FieldError } from '../lib/errors.js'
import { CLIENT_SCOPES, SCOPES } from '../lib/scopes.js'

/** Password logins and apps without client authentication are made by this public client. */
export const PUBLIC_CLIENT_ID = 'public'

export const GRANT_TYPES = ['client_credentials', 'authorization_code', 'refresh_token', 'password'] as const
export type GrantType = (typeof GRANT_TYPES)[number]

export interface OAuthClient {
  /** `public`, or a registered client's id. */
  id: string
  name: string
  /** No secret: a browser or mobile app. */
  isPublic: boolean
  /** The service's own: users are not asked to consent. */
  firstParty: boolean
  /** What it may hold itself (client credentials), or ask users for. */
  scopes: string[]
  grantTypes: string[]
  redirectUris: string[]
  postLogoutRedirectUris: string[]
}

/** Where Swagger UI, on the docs page, receives the authorization code. */
export const docsRedirectUri = (config: Pick<Config, 'PUBLIC_URL'>) => `${config.PUBLIC_URL.replace(/\/+$/, '')}/docs/static/oauth2-redirect.html`

/**
 * The built-in public client: first-party, no secret. It signs users in with
 * the password grant (scripts, tests) or, from the docs page, with the
 * authorization code flow and PKCE.
 */
export function builtInPublicClient(config: Pick<Config, 'PUBLIC_URL'>): OAuthClient {
  return {
    id: PUBLIC_CLIENT_ID,
    name: 'Blog API (first-party tools and the docs page)',
    isPublic: true,
    firstParty: true,
    scopes: Object.keys(SCOPES),
    grantTypes: ['password', 'refresh_token', 'authorization_code'],
    redirectUris: [docsRedirectUri(config)],
    postLogoutRedirectUris: [config.PUBLIC_URL.replace(/\/+$/, '') + '/docs']
  }
}

/** Schemes a redirect URI must never have, whatever else it is. */
const DANGEROUS_SCHEMES = new Set(['javascript:', 'data:', 'file:', 'vbscript:', 'blob:', 'about:', 'ftp:', 'ws:', 'wss:'])
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])

/**
 * Why a redirect URI is not acceptable, or nothing. It must be an absolute
 * URI without a fragment or credentials: https; plain http only to this
 * machine's loopback (native apps, development); or a private-use scheme in
 * reverse-domain form (`com.example.app:/callback`, RFC 8252 §7.1).
 */
export function redirectUriProblem(uri: string): string | undefined {
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    return 'is not an absolute URI'
  }
  if (uri.includes('#')) return 'must not have a fragment'
  if (url.username || url.password) return 'must not carry credentials'
  if (DANGEROUS_SCHEMES.has(url.protocol)) return `must not use the ${url.protocol} scheme`
  if (url.protocol === 'https:') return undefined
  if (url.protocol === 'http:') return LOOPBACK_HOSTS.has(url.hostname) ? undefined : 'must use https (plain http only to localhost)'
  // A private-use scheme: reverse domain name, so apps cannot claim one another's.
  return /^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+:$/.test(url.protocol) ? undefined : 'must use https, http to localhost, or a reverse-domain custom scheme'
}

export interface Registration {
  scopes: string[]
  grantTypes: string[]
  redirectUris: string[]
  postLogoutRedirectUris: string[]
  isPublic: boolean
  firstParty: boolean
}

/** A service of the client-credentials grant, holding `scopes`: the default kind of client. */
export const serviceRegistration = (scopes: string[]): Registration => ({
  scopes,
  grantTypes: ['client_credentials'],
  redirectUris: [],
  postLogoutRedirectUris: [],
  isPublic: false,
  firstParty: false
})

/** What is wrong with a registration, by field; empty when it is sound. */
export function registrationProblems(registration: Registration): FieldError[] {
  const { scopes, grantTypes, redirectUris, postLogoutRedirectUris, isPublic, firstParty } = registration
  const problems: FieldError[] = []
  const has = (grant: GrantType) => grantTypes.includes(grant)
  const signsUsersIn = has('authorization_code') || has('password')
  if (isPublic && (has('client_credentials') || has('password'))) {
    problems.push({ field: 'grant_types', message: 'a public client (no secret) may use only authorization_code and refresh_token' })
  }
  if (has('password') && !firstParty) {
    problems.push({ field: 'grant_types', message: 'only a first-party client may collect passwords (password grant); apps use authorization_code' })
  }
  if (has('refresh_token') && !signsUsersIn) {
    problems.push({ field: 'grant_types', message: 'refresh_token needs a grant that signs users in (authorization_code or password)' })
  }
  if (has('authorization_code') && redirectUris.length === 0) {
    problems.push({ field: 'redirect_uris', message: 'authorization_code needs at least one redirect URI' })
  }
  if (!has('authorization_code') && (redirectUris.length > 0 || postLogoutRedirectUris.length > 0)) {
    problems.push({ field: 'redirect_uris', message: 'redirect URIs are for clients with the authorization_code grant' })
  }
  for (const [field, uris] of [['redirect_uris', redirectUris], ['post_logout_redirect_uris', postLogoutRedirectUris]] as const) {
    uris.forEach((uri, index) => {
      const problem = redirectUriProblem(uri)
      if (problem) problems.push({ field: `${field}.${index}`, message: problem })
    })
  }
  const forUsersOnly = scopes.filter((scope) => !(CLIENT_SCOPES as readonly string[]).includes(scope))
  if (forUsersOnly.length > 0 && !signsUsersIn) {
    problems.push({ field: 'scopes', message: `${forUsersOnly.join(' ')} can only be asked of users: add a grant that signs users in` })
  }
  return problems
}
