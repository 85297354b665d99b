// Users: the public shape of an account and the bodies that change one.
import { Type, type Static } from '@sinclair/typebox'
import { refTo, Cursor, Email, Id, IdOf, Limit, Text, Timestamp } from './common.js'

export const Role = Type.Union([Type.Literal('user'), Type.Literal('admin')])

export const FullName = Text({ minLength: 1, maxLength: 200, examples: ['Ada Lovelace'] })
/** Length rules beyond these bounds (the configured minimum) are checked by the password policy. */
export const Password = Text({ minLength: 1, maxLength: 1024, examples: ['correct horse battery staple'] })

export const User = Type.Object(
  {
    id: Id,
    email: Email,
    email_verified: Type.Boolean({ description: 'Whether the account showed it receives mail at `email` (a verification link, or a password reset by email).' }),
    pending_email: Type.Optional({ ...Email, description: 'A new email asked for, not yet confirmed: it replaces `email` when the link sent to it is used.' }),
    full_name: FullName,
    role: Role,
    is_active: Type.Boolean(),
    mfa_enabled: Type.Boolean({ description: 'Signing in asks for a second factor (an authenticator code or a recovery code).' }),
    created_at: Timestamp
  },
  {
    $id: 'User',
    description: 'A user account. Passwords and their hashes never appear in any answer.',
    examples: [
      {
        id: '6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f',
        email: 'ada@example.com',
        email_verified: true,
        full_name: 'Ada Lovelace',
        role: 'user',
        is_active: true,
        mfa_enabled: false,
        created_at: '2026-01-15T09:30:00.000Z'
      }
    ]
  }
)
export type UserDto = Static<typeof User>
export const UserRef = refTo(User)

export const SignupBody = Type.Object(
  { email: Email, full_name: FullName, password: Password },
  {
    additionalProperties: false,
    examples: [{ email: 'ada@example.com', full_name: 'Ada Lovelace', password: 'correct horse battery staple' }]
  }
)

export const UpdateMeBody = Type.Object(
  {
    full_name: Type.Optional(FullName),
    email: Type.Optional(Email),
    current_password: Type.Optional({ ...Password, description: 'Required to change `email`.' })
  },
  {
    additionalProperties: false,
    minProperties: 1,
    examples: [{ full_name: 'Ada King' }, { email: 'ada.king@example.com', current_password: 'correct horse battery staple' }]
  }
)

export const DeleteMeBody = Type.Object(
  { current_password: Password },
  { additionalProperties: false, examples: [{ current_password: 'correct horse battery staple' }] }
)

export const ChangePasswordBody = Type.Object(
  { current_password: Password, new_password: Password },
  {
    additionalProperties: false,
    examples: [{ current_password: 'correct horse battery staple', new_password: 'a longer and newer passphrase' }]
  }
)

export const AdminUpdateUserBody = Type.Object(
  {
    is_active: Type.Optional(Type.Boolean()),
    role: Type.Optional(Role),
    mfa_enabled: Type.Optional(
      Type.Literal(false, { description: 'Only `false`: turns MFA off for a user who lost every second factor.' })
    )
  },
  { additionalProperties: false, minProperties: 1, examples: [{ is_active: false }, { mfa_enabled: false }] }
)

export const UsersQuery = Type.Object(
  { limit: Limit, cursor: Type.Optional(Cursor) },
  { additionalProperties: false }
)

/** An app the user allowed (through the consent page) to ask for some of their scopes. */
export const Consent = Type.Object(
  {
    client_id: IdOf('The app (OAuth client).'),
    client_name: Type.String({ description: 'Its name, as registered.' }),
    scopes: Type.Array(Type.String(), { description: 'What it may ask for without asking you again.' }),
    granted_at: Timestamp,
    updated_at: Timestamp
  },
  { additionalProperties: false }
)

export const ConsentParams = Type.Object({ client_id: IdOf('The app (OAuth client) whose consent to withdraw.') })
