// Multi-factor sign-in: the bodies and answers of enrolment, confirmation,
// recovery codes and turning MFA off.
import { Type } from '@sinclair/typebox'
import { Password } from './users.js'

/**
 * What a person types from an authenticator app (6 digits) or a recovery code
 * (16 characters in groups of four; case, spaces and dashes do not matter).
 */
export const Code = Type.String({
  minLength: 6,
  maxLength: 40,
  pattern: '^[0-9A-Za-z -]+$',
  description: 'The 6-digit code of your authenticator app, or one of your unused recovery codes.',
  examples: ['492039']
})

/** Only the authenticator's code: recovery codes do not exist before MFA is on. */
const TotpCode = { ...Code, description: 'The 6-digit code your authenticator app shows for the new secret.' }

export const StartTotpBody = Type.Object(
  { current_password: Password },
  { additionalProperties: false, examples: [{ current_password: 'correct horse battery staple' }] }
)

export const TotpEnrolment = Type.Object(
  {
    secret: Type.String({ description: 'The secret in base32, for typing into an authenticator app by hand.' }),
    otpauth_uri: Type.String({ description: 'The same secret as an `otpauth://` URI: show it as a QR code for the app to scan.' })
  },
  {
    description: 'A pending authenticator secret (sent with `Cache-Control: no-store`). MFA is not on until a code confirms it.',
    examples: [
      {
        secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
        otpauth_uri: 'otpauth://totp/Blog%20API:ada%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Blog%20API'
      }
    ]
  }
)

export const ConfirmTotpBody = Type.Object(
  { code: TotpCode },
  { additionalProperties: false, examples: [{ code: '492039' }] }
)

export const CodeAndPasswordBody = Type.Object(
  { current_password: Password, code: Code },
  { additionalProperties: false, examples: [{ current_password: 'correct horse battery staple', code: '492039' }] }
)

export const RecoveryCodes = Type.Object(
  {
    recovery_codes: Type.Array(Type.String(), {
      minItems: 10,
      maxItems: 10,
      description: 'Ten one-time codes: each signs in once in place of an authenticator code. Shown only in this answer.'
    })
  },
  {
    description: 'A new set of recovery codes (sent with `Cache-Control: no-store`); any earlier set no longer works.',
    examples: [
      {
        recovery_codes: [
          '7k2m-x9qa-4c8d-pw3z', 'h5tn-2b7e-r1vq-6m0y', 'c3gx-8ka1-n5wd-t9fe', 'z0pr-4m6h-q2yb-e7ks', 'w8dc-1tn3-g6vx-a5rm',
          'b9qe-5f2k-y7mt-h0wc', 'n4va-7r1d-c8pz-x3gq', 'e6mk-0w5t-s2hb-j9ya', 'r1xz-3q8n-v6ec-m4kd', 'f7ty-9g0a-p5rw-k2nb'
        ]
      }
    ]
  }
)
