// Scopes: what each kind of holder may have, and the grant rule of the
// contract (what was asked for, intersected with what the holder may have).
import { OAuthError } from './errors.js'

export const SCOPES = {
  'posts:write': 'Create, edit and delete your own posts.',
  'users:read': 'Read every user account.',
  'users:write': 'Activate, deactivate and change the role of users.',
  'clients:manage': 'Create, list, rotate and delete service clients.'
} as const

export type ScopeName = keyof typeof SCOPES
const ORDER = Object.keys(SCOPES) as ScopeName[]

export function scopesForRole(role: 'user' | 'admin'): ScopeName[] {
  return role === 'admin' ? [...ORDER] : ['posts:write']
}

export function parseScope(scope: string | undefined): string[] {
  return [...new Set((scope ?? '').split(' ').filter(Boolean))]
}

/**
 * The scopes to grant: all the holder may have when none were asked for,
 * else exactly those asked for; asking for one outside `allowed` is
 * `invalid_scope` (RFC 6749 §5.2).
 */
export function grantScopes(requested: string | undefined, allowed: readonly string[]): string {
  const asked = parseScope(requested)
  if (asked.length === 0) return sortScopes(allowed).join(' ')
  const refused = asked.filter((scope) => !allowed.includes(scope))
  if (refused.length > 0) {
    throw new OAuthError('invalid_scope', `The scope "${refused.join(' ')}" is unknown or not available to you.`)
  }
  return sortScopes(asked).join(' ')
}

function sortScopes(scopes: readonly string[]): string[] {
  return [...scopes].sort((a, b) => ORDER.indexOf(a as ScopeName) - ORDER.indexOf(b as ScopeName))
}
