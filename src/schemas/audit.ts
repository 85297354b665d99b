// The audit trail as admins read it: security events, newest first.
import { Type, type Static } from '@sinclair/typebox'
import { Cursor, Id, IdOf, Limit, Timestamp } from './common.js'

/** Every kind of event the service records. */
export const AUDIT_KINDS = [
  'user.signup',
  'login.success',
  'authorization_code.exchanged',
  'authorization_code.replayed',
  'signin.success',
  'signin.failure',
  'signout',
  'consent.granted',
  'consent.withdrawn',
  'login.failure',
  'login.locked',
  'token.refresh',
  'refresh_token.reuse',
  'refresh_token.wrong_client',
  'session.logout',
  'session.revoked',
  'password.changed',
  'password.reset_requested',
  'password.reset',
  'email.verification_requested',
  'email.verified',
  'email.change_requested',
  'email.changed',
  'user.updated',
  'user.deleted',
  'client.created',
  'client.secret_rotated',
  'client.deleted',
  'client.token',
  'client.failure',
  'login.mfa_required',
  'mfa.enrolment_started',
  'mfa.enabled',
  'mfa.success',
  'mfa.failure',
  'mfa.recovery_code_used',
  'mfa.recovery_codes_regenerated',
  'mfa.disabled'
] as const

export const AuditKind = Type.Union(AUDIT_KINDS.map((kind) => Type.Literal(kind)))
export type AuditKind = Static<typeof AuditKind>

const NullableText = (description?: string) =>
  Type.Union([Type.String(), Type.Null()], description ? { description } : {})

export const AuditEvent = Type.Object({
  id: Id,
  kind: Type.String({ description: 'What happened.', examples: ['login.failure'] }),
  user_id: NullableText('The acting account; for login events, the account tried.'),
  client_id: NullableText('The acting service client.'),
  session_id: NullableText('The session the event belongs to.'),
  ip: NullableText('The client address (as TRUST_PROXY resolves it).'),
  user_agent: NullableText(),
  details: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], {
    description: 'Kind-specific facts, such as `target_user_id` and the changes of an administrative action.'
  }),
  created_at: Timestamp
})

export const AuditEventsQuery = Type.Object(
  {
    limit: Limit,
    cursor: Type.Optional(Cursor),
    user_id: Type.Optional(IdOf('Events by or about this account.')),
    kind: Type.Optional(AuditKind)
  },
  { additionalProperties: false }
)
export type AuditEventsQuery = Static<typeof AuditEventsQuery>
