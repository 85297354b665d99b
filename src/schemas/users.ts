// Users: the public shape of an account and the bodies that change one.
import { Type, type Static } from '@sinclair/typebox'
import { refTo, Cursor, Email, Id, Limit, Timestamp } from './common.js'

export const Role = Type.Union([Type.Literal('user'), Type.Literal('admin')])

export const FullName = Type.String({ minLength: 1, maxLength: 200, examples: ['Ada Lovelace'] })
/** Length rules beyond these bounds (the configured minimum) are checked by the password policy. */
export const Password = Type.String({ minLength: 1, maxLength: 1024, examples: ['correct horse battery staple'] })

export const User = Type.Object(
  {
    id: Id,
    email: Email,
    full_name: FullName,
    role: Role,
    is_active: Type.Boolean(),
    created_at: Timestamp
  },
  { $id: 'User' }
)
export type UserDto = Static<typeof User>
export const UserRef = refTo(User)

export const SignupBody = Type.Object(
  { email: Email, full_name: FullName, password: Password },
  { additionalProperties: false }
)

export const UpdateMeBody = Type.Object(
  { full_name: Type.Optional(FullName), email: Type.Optional(Email) },
  { additionalProperties: false, minProperties: 1 }
)

export const ChangePasswordBody = Type.Object(
  { current_password: Password, new_password: Password },
  { additionalProperties: false }
)

export const AdminUpdateUserBody = Type.Object(
  { is_active: Type.Optional(Type.Boolean()), role: Type.Optional(Role) },
  { additionalProperties: false, minProperties: 1 }
)

export const UsersQuery = Type.Object(
  { limit: Limit, cursor: Type.Optional(Cursor) },
  { additionalProperties: false }
)
