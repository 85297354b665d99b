// The identity claims a user's consent releases, by scope (OpenID Connect
// Core §5.4): `profile` → name, `email` → email and email_verified. The same
// for ID tokens and the userinfo endpoint.
import { parseScope } from '../lib/scopes.js'
import type { UserDto } from '../schemas/users.js'

export interface IdentityClaims {
  name?: string
  email?: string
  email_verified?: boolean
}

export function identityClaims(user: UserDto, scope: string): IdentityClaims {
  const scopes = new Set(parseScope(scope))
  return {
    ...(scopes.has('profile') ? { name: user.full_name } : {}),
    ...(scopes.has('email') ? { email: user.email, email_verified: user.email_verified } : {})
  }
}
