// Scopes: what each kind of holder may have, and the grant rule of the
// contract (what was asked for, intersected with what the holder may have).
// Scopes are the only powers a token carries: no route looks at the role in
// the database, so an admin's token narrowed to `posts:write` has no admin
// powers, and a service client has exactly the scopes it was granted.
//
// OpenID Connect's `openid`, `profile` and `email` are not powers but consent
// to learn who the user is: any account may grant them to an app that asks,
// and a request that names no scope gets the role's powers without them.
import { OAuthError } from './errors.js'

export const SCOPES = {
  'posts:write': 'Create, edit and delete your own posts.',
  'posts:moderate': "Edit and delete anyone's posts.",
  'users:read': 'Read every user account.',
  'users:write': 'Activate, deactivate and change the role of users.',
  'clients:manage': 'Create, list, rotate and delete service clients (only with scopes you hold).',
  'audit:read': 'Read the audit trail of security events.',
  openid: 'Sign in with OpenID Connect: an ID token saying who you are.',
  profile: 'Your name.',
  email: 'Your email address, and whether it is verified.'
} as const

export type ScopeName = keyof typeof SCOPES
const ORDER = Object.keys(SCOPES) as ScopeName[]

/** Who the user is (OpenID Connect), rather than what a token may do. */
export const IDENTITY_SCOPES = ['openid', 'profile', 'email'] as const satisfies readonly ScopeName[]
const isIdentityScope = (scope: string) => (IDENTITY_SCOPES as readonly string[]).includes(scope)

/** The powers among `scopes` (what holding a scope means when granting it to others). */
export const powersOf = (scopes: Iterable<string>) => [...scopes].filter((scope) => !isIdentityScope(scope))

/** The powers an administrator has beyond a user's; a service client may be granted any of them. */
export const ADMINISTRATIVE_SCOPES = ['posts:moderate', 'users:read', 'users:write', 'clients:manage', 'audit:read'] as const satisfies readonly ScopeName[]

/** What a service client may be granted (`posts:write` needs a user behind it). */
export const CLIENT_SCOPES = ADMINISTRATIVE_SCOPES

/** What an administrator may have: every power. */
export const ADMIN_SCOPES: readonly ScopeName[] = ORDER.filter((scope) => !isIdentityScope(scope))

/** The powers of a role: what a login that names no scope gets. */
export function scopesForRole(role: 'user' | 'admin'): readonly ScopeName[] {
  return role === 'admin' ? ADMIN_SCOPES : ['posts:write']
}

/** What an account may be granted when it asks: its role's powers and the identity scopes. */
export function grantableForRole(role: 'user' | 'admin'): readonly string[] {
  return [...scopesForRole(role), ...IDENTITY_SCOPES]
}

export function parseScope(scope: string | undefined): string[] {
  return [...new Set((scope ?? '').split(' ').filter(Boolean))]
}

/** The scopes of `wanted` that `held` lacks (empty: `held` covers them all). */
export function missingScopes(wanted: Iterable<string>, held: ReadonlySet<string>): string[] {
  return [...wanted].filter((scope) => !held.has(scope))
}

/**
 * The scopes to grant: `defaults` (all the holder may have, unless said
 * otherwise) when none were asked for, else exactly those asked for; asking
 * for one outside `allowed` is `invalid_scope` (RFC 6749 §5.2).
 */
export function grantScopes(requested: string | undefined, allowed: readonly string[], defaults: readonly string[] = allowed): string {
  const asked = parseScope(requested)
  if (asked.length === 0) return sortScopes(defaults.filter((scope) => allowed.includes(scope))).join(' ')
  const refused = asked.filter((scope) => !allowed.includes(scope))
  if (refused.length > 0) {
    throw new OAuthError('invalid_scope', `The scope "${refused.join(' ')}" is unknown or not available to you.`)
  }
  return sortScopes(asked).join(' ')
}

/** The scopes of `granted` that are still within `allowed` now, in order. */
export function intersectScopes(granted: string, allowed: readonly string[]): string {
  return sortScopes(parseScope(granted).filter((scope) => allowed.includes(scope))).join(' ')
}

/** Scopes as a token carries them: space-separated, in the order of SCOPES. */
export const joinScopes = (scopes: readonly string[]) => sortScopes(scopes).join(' ')

function sortScopes(scopes: readonly string[]): string[] {
  return [...scopes].sort((a, b) => ORDER.indexOf(a as ScopeName) - ORDER.indexOf(b as ScopeName))
}
