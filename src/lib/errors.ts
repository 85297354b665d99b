// Error types that handlers throw. The error-handler plugin turns each into
// the contract's shape: RFC 9457 problem details, RFC 6749 token errors, or an
// RFC 6750 bearer challenge. Handlers never build error bodies themselves.

export interface FieldError {
  field: string
  message: string
}

/** An error answered as `application/problem+json`. */
export class ProblemError extends Error {
  readonly statusCode: number
  readonly headers: Record<string, string>
  readonly errors: FieldError[] | undefined

  constructor(
    statusCode: number,
    detail: string,
    options: { headers?: Record<string, string>; errors?: FieldError[] } = {}
  ) {
    super(detail)
    this.name = 'ProblemError'
    this.statusCode = statusCode
    this.headers = options.headers ?? {}
    this.errors = options.errors
  }
}

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  /** Not RFC 6749's: the password was right, a second factor is needed (403, with `mfa_token`). */
  | 'mfa_required'

/** An RFC 6749 §5.2 error of the token endpoint. */
export class OAuthError extends Error {
  readonly statusCode: number
  readonly error: OAuthErrorCode
  readonly headers: Record<string, string>
  /** Members of the answer beyond `error` and `error_description`. */
  readonly extra: Record<string, string>

  constructor(
    error: OAuthErrorCode,
    description: string,
    options: { basicChallenge?: boolean; realm?: string; extra?: Record<string, string> } = {}
  ) {
    super(description)
    this.name = 'OAuthError'
    this.error = error
    this.statusCode = error === 'invalid_client' ? 401 : error === 'mfa_required' ? 403 : 400
    this.headers = options.basicChallenge
      ? { 'www-authenticate': `Basic realm="${options.realm ?? 'token'}", charset="UTF-8"` }
      : {}
    this.extra = options.extra ?? {}
  }
}

/** A password login of an account with MFA: no tokens, but a token for the code that finishes it. */
export const mfaRequired = (mfaToken: string) =>
  new OAuthError('mfa_required', 'This account needs a second factor: send an authenticator or recovery code with the mfa_token.', {
    extra: { mfa_token: mfaToken }
  })

/**
 * A refused bearer token (401) or a token without the needed scope (403),
 * answered with an RFC 6750 `WWW-Authenticate` challenge and a problem body.
 */
export class BearerError extends ProblemError {
  constructor(
    kind: 'missing' | 'invalid_token' | 'insufficient_scope',
    detail: string,
    options: { realm: string; scope?: string }
  ) {
    const attributes = [`realm="${options.realm}"`]
    if (kind !== 'missing') {
      attributes.push(`error="${kind}"`, `error_description="${detail.replace(/["\\]/g, '')}"`)
    }
    if (kind === 'insufficient_scope' && options.scope) attributes.push(`scope="${options.scope}"`)
    super(kind === 'insufficient_scope' ? 403 : 401, detail, {
      headers: { 'www-authenticate': `Bearer ${attributes.join(', ')}` }
    })
    this.name = 'BearerError'
  }
}

export const notFound = (what: string) => new ProblemError(404, `${what} not found.`)
export const forbidden = (detail: string) => new ProblemError(403, detail)
export const conflict = (detail: string) => new ProblemError(409, detail)
export const badRequest = (detail: string, errors?: FieldError[]) =>
  new ProblemError(400, detail, errors ? { errors } : {})

/** 503 with `Retry-After`: the service (its database, its lockout store, its capacity) is briefly unable to answer. */
export const serviceUnavailable = (
  detail = 'The service is temporarily unavailable. Try again shortly.',
  retryAfterSeconds = 5
) => new ProblemError(503, detail, { headers: { 'retry-after': String(retryAfterSeconds) } })

/**
 * The client closed the connection before it was answered (nginx's 499); no
 * one reads this answer, but the logs say what happened.
 */
export const clientClosedRequest = () => new ProblemError(499, 'The client closed the connection before it was answered.')

/**
 * 429 with `Retry-After`, for the per-address rate limits and the per-account
 * lockout alike: one body (problem details, also at the token endpoint, where
 * RFC 6749 defines no error code for it) so clients handle both the same way.
 */
export const tooManyRequests = (retryAfterSeconds: number) => {
  const seconds = Math.max(1, Math.ceil(retryAfterSeconds))
  return new ProblemError(429, `Too many attempts. Try again in ${seconds} second${seconds === 1 ? '' : 's'}.`, {
    headers: { 'retry-after': String(seconds), 'cache-control': 'no-store' }
  })
}
