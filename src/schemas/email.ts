// Password reset and email verification: the bodies of the JSON routes and of
// the forms of the pages a link opens.
import { Type } from '@sinclair/typebox'
import { Email, Text } from './common.js'
import { Password } from './users.js'

const EXAMPLE_RESET_TOKEN = 'bapi_pr_Q2hhbmdlIG1lOiBJIGFtIGFuIGV4YW1wbGUgdG9rZW4'
const EXAMPLE_VERIFY_TOKEN = 'bapi_ev_Q2hhbmdlIG1lOiBJIGFtIGFuIGV4YW1wbGUgdG9rZW4'

/** A link's token: whatever its shape, one that cannot be used is a 400 after the lookup, like any other. */
const LinkToken = (example: string) =>
  Text({ minLength: 1, maxLength: 200, description: 'The `token` of the link in the email.', examples: [example] })

export const ForgotPasswordBody = Type.Object(
  { email: Email },
  { additionalProperties: false, examples: [{ email: 'ada@example.com' }] }
)

export const ResetPasswordBody = Type.Object(
  { token: LinkToken(EXAMPLE_RESET_TOKEN), new_password: Password },
  { additionalProperties: false, examples: [{ token: EXAMPLE_RESET_TOKEN, new_password: 'a longer and newer passphrase' }] }
)

export const VerifyEmailBody = Type.Object(
  { token: LinkToken(EXAMPLE_VERIFY_TOKEN) },
  { additionalProperties: false, examples: [{ token: EXAMPLE_VERIFY_TOKEN }] }
)

export const FORGOT_MESSAGE = 'If an active account has this email address, a link to choose a new password is on its way to it.'
export const VERIFICATION_MESSAGE = 'A link is on its way to the address to verify (at most one email a minute).'

export const Accepted = (description: string, message: string) =>
  Type.Object({ message: Type.String() }, { description, examples: [{ message }] })

// The pages' forms and links. Query strings keep unknown parameters (a mail
// program may add tracking ones to a link); fields may be empty, so that a
// form comes back with a message instead of an error page.
const FormText = (maxLength: number) => Text({ maxLength })

export const LinkQuery = Type.Object({ token: Type.Optional(FormText(200)) })
export const ForgotPasswordForm = Type.Object(
  { email: FormText(254) },
  { additionalProperties: false, examples: [{ email: 'ada@example.com' }] }
)
export const ResetPasswordForm = Type.Object(
  { token: FormText(200), new_password: FormText(1024), new_password_again: FormText(1024) },
  {
    additionalProperties: false,
    examples: [{ token: EXAMPLE_RESET_TOKEN, new_password: 'a longer and newer passphrase', new_password_again: 'a longer and newer passphrase' }]
  }
)
export const VerifyEmailForm = Type.Object(
  { token: FormText(200) },
  { additionalProperties: false, examples: [{ token: EXAMPLE_VERIFY_TOKEN }] }
)
