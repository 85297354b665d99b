// An authorization request (RFC 6749 §4.1.1 with PKCE, OpenID Connect Core
// §3.1.2.1), checked by a list of small steps, each of which passes or throws
// the error the specifications name. Reading STEPS tells the whole check.
//
// Until the client and its redirect URI are known to be genuine, an error is
// shown on the service's own page and never redirected anywhere (no open
// redirect); after that, errors go back to the client's redirect URI as RFC
// 6749 §4.1.2.1 says, with `state` and `iss` (RFC 9207).
import { parseScope } from '../../lib/scopes.js'
import type { OAuthClient } from '../clients.js'
import { CODE_CHALLENGE } from '../pkce.js'

export type Prompt = 'none' | 'login' | 'consent'

/** A request that passed every step. */
export interface AuthorizationRequest {
  client: OAuthClient
  redirectUri: string
  state?: string
  /** The scopes asked for (before the user's role and consent narrow them). */
  scopes: string[]
  codeChallenge: string
  nonce?: string
  prompt?: Prompt
  /** Seconds: a sign-in older than this must be made again (OpenID Connect `max_age`). */
  maxAge?: number
}

/** The request's parameters, from the query (GET) or the form (POST); a repeated one is an array. */
export type AuthorizationParams = Record<string, string | string[] | undefined>

/** Shown on the service's own page: the client or its redirect URI cannot be trusted with a redirect. */
export class UnredirectableError extends Error {
  constructor(readonly error: 'invalid_client' | 'invalid_redirect_uri' | 'invalid_request', description: string) {
    super(description)
    this.name = 'UnredirectableError'
  }
}

/** Sent back to the client's redirect URI (RFC 6749 §4.1.2.1, OpenID Connect Core §3.1.2.6). */
export class RedirectableError extends Error {
  constructor(
    readonly error:
      | 'invalid_request'
      | 'unauthorized_client'
      | 'access_denied'
      | 'unsupported_response_type'
      | 'invalid_scope'
      | 'server_error'
      | 'login_required'
      | 'consent_required',
    description: string
  ) {
    super(description)
    this.name = 'RedirectableError'
  }
}

/** The parameters every step reads, each a single string or absent. */
interface Parameters {
  [name: string]: string | undefined
}

interface Step {
  name: string
  run(params: Parameters, request: Partial<AuthorizationRequest>, client: OAuthClient): void
}

const single = (params: AuthorizationParams, name: string, unredirectable: boolean): string | undefined => {
  const value = params[name]
  if (Array.isArray(value)) {
    const description = `The parameter "${name}" must not be repeated.`
    throw unredirectable ? new UnredirectableError('invalid_request', description) : new RedirectableError('invalid_request', description)
  }
  return value === '' ? undefined : value
}

/** Every parameter an authorization request may carry; others are ignored (RFC 6749 §3.1). */
const KNOWN = ['client_id', 'redirect_uri', 'response_type', 'response_mode', 'scope', 'state', 'code_challenge', 'code_challenge_method', 'nonce', 'prompt', 'max_age']

const STEPS: Step[] = [
  {
    name: 'check state and nonce',
    run(params, request) {
      for (const name of ['state', 'nonce'] as const) {
        const value = params[name]
        if (value !== undefined && (value.length > 512 || !/^[\x20-\x7E]+$/.test(value))) {
          throw new RedirectableError('invalid_request', `${name} must be at most 512 printable ASCII characters.`)
        }
      }
      // Only a well-formed state is sent back, with this request's errors too.
      request.state = params.state
      request.nonce = params.nonce
    }
  },
  {
    name: 'check response_type',
    run(params) {
      if (params.response_type === undefined) throw new RedirectableError('invalid_request', 'response_type is required.')
      if (params.response_type !== 'code') {
        throw new RedirectableError('unsupported_response_type', 'Only response_type=code is supported.')
      }
      if (params.response_mode !== undefined && params.response_mode !== 'query') {
        throw new RedirectableError('invalid_request', 'Only response_mode=query is supported.')
      }
    }
  },
  {
    name: 'check the client may use this flow',
    run(_params, _request, client) {
      if (!client.grantTypes.includes('authorization_code')) {
        throw new RedirectableError('unauthorized_client', 'This client may not use the authorization code flow.')
      }
    }
  },
  {
    name: 'check PKCE (S256, required)',
    run(params, request) {
      const challenge = params.code_challenge
      if (challenge === undefined) throw new RedirectableError('invalid_request', 'PKCE is required: send code_challenge with code_challenge_method=S256.')
      if (params.code_challenge_method !== 'S256') {
        throw new RedirectableError('invalid_request', 'code_challenge_method must be S256 (plain is not accepted).')
      }
      if (!CODE_CHALLENGE.test(challenge)) throw new RedirectableError('invalid_request', 'code_challenge is not a base64url SHA-256 (43 characters).')
      request.codeChallenge = challenge
    }
  },
  {
    name: 'check scope',
    run(params, request, client) {
      const asked = parseScope(params.scope)
      if ((params.scope ?? '').length > 500 || asked.some((scope) => !/^[\x21\x23-\x5B\x5D-\x7E]+$/.test(scope))) {
        throw new RedirectableError('invalid_scope', 'The scope is malformed.')
      }
      const refused = asked.filter((scope) => !client.scopes.includes(scope))
      if (refused.length > 0) throw new RedirectableError('invalid_scope', `This client may not ask for "${refused.join(' ')}".`)
      request.scopes = asked
    }
  },
  {
    name: 'check prompt',
    run(params, request) {
      const prompts = (params.prompt ?? '').split(' ').filter(Boolean)
      if (prompts.length > 1 && prompts.includes('none')) throw new RedirectableError('invalid_request', 'prompt=none cannot be combined.')
      const supported = prompts.filter((prompt): prompt is Prompt => prompt === 'none' || prompt === 'login' || prompt === 'consent')
      // `login` wins over `consent` when both are asked: signing in again leads to the consent page anyway.
      request.prompt = supported.includes('none') ? 'none' : supported.includes('login') ? 'login' : supported[0]
    }
  },
  {
    name: 'check max_age',
    run(params, request) {
      if (params.max_age === undefined) return
      if (!/^\d{1,9}$/.test(params.max_age)) throw new RedirectableError('invalid_request', 'max_age must be a whole number of seconds.')
      request.maxAge = Number(params.max_age)
    }
  }
]

/**
 * Checks an authorization request. The client and redirect URI come first
 * (their errors are UnredirectableError); every later error is a
 * RedirectableError carrying what to send back.
 */
export async function checkAuthorizationRequest(
  raw: AuthorizationParams,
  findClient: (clientId: string) => Promise<OAuthClient | undefined>
): Promise<AuthorizationRequest> {
  const clientId = single(raw, 'client_id', true)
  const redirectUri = single(raw, 'redirect_uri', true)
  if (!clientId || clientId.length > 100) throw new UnredirectableError('invalid_client', 'The request names no known client.')
  const client = await findClient(clientId)
  if (!client) throw new UnredirectableError('invalid_client', 'The request names no known client.')
  // Exact match only: no prefix, no pattern, no default when several are registered.
  if (!redirectUri) throw new UnredirectableError('invalid_redirect_uri', 'redirect_uri is required.')
  if (!client.redirectUris.includes(redirectUri)) {
    throw new UnredirectableError('invalid_redirect_uri', 'The redirect_uri is not one this client registered.')
  }

  // From here on the client and its redirect URI are genuine: errors go back to it.
  const request: Partial<AuthorizationRequest> = { client, redirectUri }
  let params: Parameters
  try {
    params = Object.fromEntries(KNOWN.map((name) => [name, single(raw, name, false)]))
  } catch (error) {
    if (error instanceof RedirectableError) throw new RedirectWithState(error, { redirectUri })
    throw error
  }
  try {
    for (const step of STEPS) step.run(params, request, client)
  } catch (error) {
    if (error instanceof RedirectableError) throw new RedirectWithState(error, request as AuthorizationRequest)
    throw error
  }
  return request as AuthorizationRequest
}

/** A RedirectableError with what is needed to send it back: the redirect URI and the state. */
export class RedirectWithState extends Error {
  constructor(
    readonly refusal: RedirectableError,
    readonly request: Pick<AuthorizationRequest, 'redirectUri' | 'state'>
  ) {
    super(refusal.message)
    this.name = 'RedirectWithState'
  }
}

/** The client's redirect URI with `params` added to its query (RFC 6749 §4.1.2; `iss`: RFC 9207). */
export function redirectTo(redirectUri: string, params: Record<string, string | undefined>): string {
  const url = new URL(redirectUri)
  for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.append(name, value)
  return url.toString()
}
