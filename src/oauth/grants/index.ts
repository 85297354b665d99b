// The grant types the token endpoint answers, by `grant_type`. Adding a grant
// is adding a module and a line here.
import { authorizationCodeGrant } from './authorization-code.js'
import { clientCredentialsGrant } from './client-credentials.js'
import { MFA_OTP_GRANT_TYPE, mfaOtpGrant } from './mfa-otp.js'
import { passwordGrant } from './password.js'
import { refreshTokenGrant } from './refresh-token.js'
import type { Grant } from './types.js'

export const GRANTS: ReadonlyMap<string, Grant> = new Map<string, Grant>([
  ['authorization_code', { handle: authorizationCodeGrant }],
  ['refresh_token', { handle: refreshTokenGrant }],
  ['client_credentials', { handle: clientCredentialsGrant, confidentialOnly: true }],
  ['password', { handle: passwordGrant }],
  // The second step of a password login: for the clients that may make the first.
  [MFA_OTP_GRANT_TYPE, { handle: mfaOtpGrant, partOf: 'password' }]
])
