// The grant types the token endpoint answers, by `grant_type`. Adding a grant
// is adding a module and a line here.
import { clientCredentialsGrant } from './client-credentials.js'
import { MFA_OTP_GRANT_TYPE, mfaOtpGrant } from './mfa-otp.js'
import { passwordGrant } from './password.js'
import { refreshTokenGrant } from './refresh-token.js'
import type { Grant } from './types.js'

export const GRANTS: ReadonlyMap<string, Grant> = new Map([
  ['password', passwordGrant],
  ['refresh_token', refreshTokenGrant],
  ['client_credentials', clientCredentialsGrant],
  [MFA_OTP_GRANT_TYPE, mfaOtpGrant]
])
