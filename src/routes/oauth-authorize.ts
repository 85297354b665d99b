// The browser side of OAuth 2.1 and OpenID Connect: the authorization
// endpoint (RFC 6749 §4.1 with PKCE) with its sign-in and consent pages, the
// end-session endpoint, and a small signup page. Pages work without
// JavaScript, post forms to this origin, carry a CSRF token (the sign-in
// cookie makes them worth forging), and are never framed.
//
// The flow: check the request (src/oauth/authorize/request.ts) → signed in
// already (the `bapi_signin` cookie, a browser sign-in that lives only while
// the account is unchanged) or sign in on the form → consent, for clients
// that are not first-party and ask for more than the user allowed them
// before → a code (60 s, once, bound to everything that matters) sent to the
// registered redirect URI with `state` and `iss`.
import csrf from '@fastify/csrf-protection'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { createVerifier } from 'fast-jwt'
import { badRequest, ProblemError } from '../lib/errors.js'
import { grantableForRole, joinScopes, powersOf, SCOPES } from '../lib/scopes.js'
import {
  type AuthorizationParams,
  type AuthorizationRequest,
  checkAuthorizationRequest,
  RedirectableError,
  redirectTo,
  RedirectWithState,
  UnredirectableError
} from '../oauth/authorize/request.js'
import type { OAuthClient } from '../oauth/clients.js'
import { AccountChanged, BadCredentials, EmailNotVerified, signInWithPassword } from '../oauth/sign-in.js'
import { signUp } from '../oauth/sign-up.js'
import { BROWSER_SIGN_IN } from '../plugins/app/mfa.js'
import { pageResponses } from '../plugins/app/pages.js'
import type { BrowserSignIn } from '../repositories/browser-sessions.js'
import { AMR_PASSWORD } from '../repositories/sessions.js'
import { normalizeEmail } from '../repositories/users.js'
import { Email, Text } from '../schemas/common.js'
import { FullName, Password } from '../schemas/users.js'

/** The cookie of a browser's sign-in: sent on the top-level navigations that bring users back (SameSite=Lax). */
export const SIGN_IN_COOKIE = 'bapi_signin'

/** The parameters of an authorization request that a form carries along, as hidden fields. */
const CARRIED = ['client_id', 'redirect_uri', 'response_type', 'response_mode', 'scope', 'state', 'code_challenge', 'code_challenge_method', 'nonce', 'prompt', 'max_age'] as const
const Param = Text({ maxLength: 2000 })
const carriedProperties = Object.fromEntries(CARRIED.map((name) => [name, Type.Optional(Param)]))

// Unknown parameters are ignored (RFC 6749 §3.1), so these admit extra properties.
const AuthorizeQuery = Type.Object(carriedProperties)
const AuthorizeForm = Type.Object({
  ...carriedProperties,
  _csrf: Type.Optional(Text({ maxLength: 200 })),
  action: Type.Optional(Text({ maxLength: 20 })),
  email: Type.Optional(Text({ maxLength: 254 })),
  password: Type.Optional(Text({ maxLength: 1024 })),
  mfa_token: Type.Optional(Text({ maxLength: 200 })),
  code: Type.Optional(Text({ maxLength: 64 })),
  decision: Type.Optional(Text({ maxLength: 10 }))
}, {
  // The sign-in step, as the page posts it (the CSRF token comes from the page).
  examples: [{
    _csrf: 'the token of the page',
    action: 'sign-in',
    client_id: 'public',
    redirect_uri: 'http://localhost:5173/callback',
    response_type: 'code',
    scope: 'openid posts:write',
    state: 'af0ifjsldkj',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
    email: 'ada@example.com',
    password: 'correct horse battery staple'
  }]
})
const LogoutQuery = Type.Object({
  id_token_hint: Type.Optional(Text({ maxLength: 8192 })),
  post_logout_redirect_uri: Type.Optional(Param),
  client_id: Type.Optional(Text({ maxLength: 100 })),
  state: Type.Optional(Text({ maxLength: 512 })),
  _csrf: Type.Optional(Text({ maxLength: 200 }))
}, { examples: [{ _csrf: 'the token of the page', post_logout_redirect_uri: 'http://localhost:5173/', client_id: 'public', state: 'xyz' }] })
const SignupForm = Type.Object(
  { _csrf: Type.Optional(Text({ maxLength: 200 })), return_to: Type.Optional(Param), email: Email, full_name: FullName, password: Password },
  {
    additionalProperties: false,
    examples: [{ _csrf: 'the token of the page', return_to: '/oauth/authorize?client_id=public', email: 'ada@example.com', full_name: 'Ada Lovelace', password: 'correct horse battery staple' }]
  }
)

const FORM = 'application/x-www-form-urlencoded'
const pageHtml = pageResponses({ 200: 'The page.', 400: 'A page saying what was wrong.', 403: 'A page: the form was not sent from this page (CSRF).', 429: 'A page: too many attempts.' })

/** The carried parameters of a request, for the hidden fields of the next form. */
function carried(source: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(CARRIED.flatMap((name) => {
    const value = source[name]
    return typeof value === 'string' ? [[name, value]] : []
  }))
}

/**
 * The CSP source of a (registered, checked) redirect URI: its origin, or its
 * scheme for an app's custom scheme. The pages that end in a redirect there
 * name it in `form-action`, which browsers apply to a form's redirect too.
 */
function formActionFor(redirectUri: string): string {
  const url = new URL(redirectUri)
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : url.protocol
}

/** Where a signup should lead back to: a sign-in of this service, never elsewhere. */
function safeReturn(target: string | undefined): string {
  return target !== undefined && target.startsWith('/oauth/authorize?') ? target : '/oauth/authorize'
}

const oauthAuthorizeRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { config, oauth, mfa, usersRepository: users, browserSessionsRepository: browserSessions, consentsRepository: consents, authorizationCodesRepository: codes, auditLog } =
    fastify
  const secureCookies = new URL(config.PUBLIC_URL).protocol === 'https:'
  const rateLimit = { max: config.AUTH_RATE_LIMIT_MAX, timeWindow: config.AUTH_RATE_LIMIT_WINDOW * 1000 }

  // The CSRF secret lives in a cookie of its own; each form carries a token derived from it.
  await fastify.register(csrf, {
    cookieKey: 'bapi_csrf',
    cookieOpts: { path: '/', httpOnly: true, sameSite: 'strict', secure: secureCookies },
    getToken: (request) => (request.body as { _csrf?: string } | undefined)?._csrf
  })

  const csrfProtection = fastify.csrfProtection.bind(fastify)

  const verifyIdTokenHint = createVerifier({
    key: async (decoded: { header: { kid?: string } }) => {
      const key = decoded.header.kid === undefined ? undefined : fastify.signingKeys.verificationKeys.get(decoded.header.kid)
      if (!key) throw new Error('unknown key id')
      return key
    },
    algorithms: [fastify.signingKeys.algorithm],
    allowedIss: config.JWT_ISSUER,
    // A hint is usually an old ID token: who signed in, not whether they still are.
    ignoreExpiration: true,
    complete: false
  })

  /** Sends an authorization error back to the client (RFC 6749 §4.1.2.1, RFC 9207). */
  function sendBack(reply: FastifyReply, request: Pick<AuthorizationRequest, 'redirectUri' | 'state'>, error: RedirectableError) {
    return reply.redirect(
      redirectTo(request.redirectUri, { error: error.error, error_description: error.message, state: request.state, iss: config.JWT_ISSUER }),
      303
    )
  }

  /** Checks the request's parameters, answering the error itself (a page, or a redirect) when they fail. */
  async function checked(params: AuthorizationParams, reply: FastifyReply): Promise<AuthorizationRequest | undefined> {
    try {
      return await checkAuthorizationRequest(params, oauth.findClient)
    } catch (error) {
      if (error instanceof RedirectWithState) {
        await sendBack(reply, error.request, error.refusal)
        return undefined
      }
      if (error instanceof UnredirectableError) {
        // Never a redirect: the client or its redirect URI cannot be trusted with one.
        await reply.page('error', { title: 'This sign-in link does not work', detail: error.message }, 400)
        return undefined
      }
      throw error
    }
  }

  function signInPage(
    reply: FastifyReply,
    client: OAuthClient,
    redirectUri: string,
    params: Record<string, string>,
    extra: { error?: string; email?: string; status?: number } = {}
  ) {
    const returnTo = `/oauth/authorize?${new URLSearchParams(params).toString()}`
    return reply.page(
      'sign-in',
      {
        title: 'Sign in',
        clientName: client.firstParty ? undefined : client.name,
        params,
        csrf: reply.generateCsrf(),
        error: extra.error,
        email: extra.email,
        signupHref: `/account/signup?${new URLSearchParams({ return_to: returnTo }).toString()}`,
        // The page without a link asks for one by email (absent when the service sends no email).
        forgotHref: fastify.mail.enabled ? '/account/reset-password' : undefined
      },
      extra.status ?? 200,
      { formActions: [formActionFor(redirectUri)] }
    )
  }

  /** The second step of a sign-in with MFA: a form for the code, carrying the mfa_token and the request. */
  function codePage(reply: FastifyReply, authz: AuthorizationRequest, params: Record<string, string>, mfaToken: string, extra: { error?: string; status?: number } = {}) {
    return reply.page(
      'sign-in-code',
      {
        title: 'Enter your code',
        params,
        mfaToken,
        csrf: reply.generateCsrf(),
        error: extra.error,
        startOver: `/oauth/authorize?${new URLSearchParams({ ...params, prompt: 'login' }).toString()}`
      },
      extra.status ?? 200,
      { formActions: [formActionFor(authz.redirectUri)] }
    )
  }

  /** A browser sign-in began (its cookie's token): remember it in the browser and go on with the request. */
  async function signedIn(request: FastifyRequest, reply: FastifyReply, authz: AuthorizationRequest, params: Record<string, string>, token: string) {
    reply.setCookie(SIGN_IN_COOKIE, token, {
      path: '/oauth',
      httpOnly: true,
      sameSite: 'lax',
      secure: secureCookies,
      maxAge: config.SIGN_IN_SESSION_TTL
    })
    const signIn = await browserSessions.find(token)
    if (!signIn) return signInPage(reply, authz.client, authz.redirectUri, params, { error: new AccountChanged().message, status: 409 })
    await auditLog.record('signin.success', request, { userId: signIn.userId })
    return proceed(reply, authz, signIn, params)
  }

  /**
   * The user is signed in: decide the scopes on the account as it is now,
   * ask for consent where needed, and send a code back.
   */
  async function proceed(reply: FastifyReply, authz: AuthorizationRequest, signIn: BrowserSignIn, params: Record<string, string>, consented = false) {
    const account = await users.findCredentialsById(signIn.userId)
    if (!account) return sendBack(reply, authz, new RedirectableError('login_required', 'The account is gone.'))
    const { client } = authz
    // An empty request asks for what the client was registered for, without the identity scopes.
    const asked = authz.scopes.length > 0 ? authz.scopes : powersOf(client.scopes)
    const available = grantableForRole(account.role)
    const scopes = asked.filter((scope) => available.includes(scope) && client.scopes.includes(scope))
    if (scopes.length === 0) return sendBack(reply, authz, new RedirectableError('invalid_scope', 'None of the scopes asked for is available to this account.'))

    const needsConsent = !client.firstParty && !consented && (authz.prompt === 'consent' || !(await consents.covers(account.id, client.id, scopes)))
    if (needsConsent) {
      if (authz.prompt === 'none') return sendBack(reply, authz, new RedirectableError('consent_required', 'The user has not allowed this client these scopes.'))
      return reply.page('consent', {
        title: `Allow ${client.name}?`,
        clientName: client.name,
        email: account.email,
        scopes: scopes.map((name) => ({ name, description: SCOPES[name as keyof typeof SCOPES] ?? name })),
        params,
        csrf: reply.generateCsrf()
      }, 200, { formActions: [formActionFor(authz.redirectUri)] })
    }

    const code = await codes.issue({
      clientId: client.id,
      userId: account.id,
      redirectUri: authz.redirectUri,
      codeChallenge: authz.codeChallenge,
      scope: joinScopes(scopes),
      nonce: authz.nonce,
      securityVersion: signIn.securityVersion,
      amr: signIn.amr,
      authTime: signIn.authTime
    })
    return reply.redirect(redirectTo(authz.redirectUri, { code, state: authz.state, iss: config.JWT_ISSUER }), 303)
  }

  fastify.get(
    '/oauth/authorize',
    {
      config: { page: true },
      schema: {
        tags: ['OAuth and OpenID Connect'],
        operationId: 'authorize',
        summary: 'Sign a user in for an app (authorization code with PKCE)',
        description:
          "Opened in the user's browser by an app: `response_type=code`, `client_id`, `redirect_uri` (registered, exactly), `scope`, `state`, `code_challenge` and `code_challenge_method=S256` (required), `nonce` (OpenID Connect), `prompt` (`none`, `login`, `consent`). Shows the sign-in page (or, for a browser signed in already, goes straight on), the consent page for apps that are not first-party, then redirects to `redirect_uri` with `code`, `state` and `iss`. An unknown client or unregistered `redirect_uri` gets an error page, never a redirect; every other error goes to `redirect_uri` with `error`.",
        querystring: AuthorizeQuery,
        response: { ...pageHtml, 303: Type.Null({ description: 'To the redirect URI, with a code or an error.' }) }
      }
    },
    async (request, reply) => {
      const authz = await checked(request.query, reply)
      if (!authz) return reply
      const params = carried(request.query)
      const found = authz.prompt === 'login' ? undefined : await browserSessions.find(request.cookies[SIGN_IN_COOKIE])
      // A sign-in older than max_age does not count: the user signs in again (OpenID Connect Core §3.1.2.1).
      const signIn = found && (authz.maxAge === undefined || Date.now() - found.authTime.getTime() <= authz.maxAge * 1000) ? found : undefined
      if (!signIn) {
        if (authz.prompt === 'none') return sendBack(reply, authz, new RedirectableError('login_required', 'The user is not signed in.'))
        return signInPage(reply, authz.client, authz.redirectUri, params)
      }
      return proceed(reply, authz, signIn, params)
    }
  )

  fastify.post(
    '/oauth/authorize',
    {
      config: { page: true, rateLimit },
      preHandler: csrfProtection,
      schema: {
        tags: ['OAuth and OpenID Connect'],
        operationId: 'authorizeForm',
        summary: 'The sign-in and consent forms of the authorization endpoint',
        description:
          'Form-encoded, from the pages of `GET /oauth/authorize` (with their CSRF token): `action=sign-in` with `email` and `password`, or `action=consent` with `decision=allow` or `deny`, and the authorization request carried along. The same limits, lockout and answers as the password grant.',
        consumes: [FORM],
        body: AuthorizeForm,
        response: { ...pageHtml, 303: Type.Null({ description: 'To the redirect URI, with a code or an error.' }) }
      }
    },
    async (request, reply) => {
      const authz = await checked(request.body, reply)
      if (!authz) return reply
      const params = carried(request.body)
      const { action, email, password, decision } = request.body

      if (action === 'consent') {
        const signIn = await browserSessions.find(request.cookies[SIGN_IN_COOKIE])
        if (!signIn) return signInPage(reply, authz.client, authz.redirectUri, params, { error: 'Your sign-in has ended. Sign in again.', status: 401 })
        if (decision !== 'allow') return sendBack(reply, authz, new RedirectableError('access_denied', 'The user did not allow the request.'))
        const account = await users.findCredentialsById(signIn.userId)
        const asked = authz.scopes.length > 0 ? authz.scopes : powersOf(authz.client.scopes)
        if (account && !authz.client.firstParty) {
          const available = grantableForRole(account.role)
          await consents.remember(account.id, authz.client.id, asked.filter((scope) => available.includes(scope)))
          await auditLog.record('consent.granted', request, { userId: account.id, details: { target_client_id: authz.client.id, scopes: asked } })
        }
        return proceed(reply, authz, signIn, params, true)
      }

      if (action === 'code') {
        const { mfa_token: mfaToken, code } = request.body
        if (!mfaToken) return signInPage(reply, authz.client, authz.redirectUri, params, { error: 'Sign in again.', status: 400 })
        if (!code) return codePage(reply, authz, params, mfaToken, { error: 'Enter the code.', status: 400 })
        // The second factor checked as at the token endpoint; the browser sign-in begins in the transaction that consumes the code.
        const redeemed = await mfa.redeem(request, { mfaToken, code, clientId: BROWSER_SIGN_IN }, (tx, verified) =>
          browserSessions.start({ userId: verified.userId, securityVersion: verified.securityVersion, amr: verified.amr }, tx)
        )
        switch (redeemed.outcome) {
          case 'invalid_token':
            return signInPage(reply, authz.client, authz.redirectUri, params, { error: 'This sign-in expired or had too many wrong codes. Sign in again.', status: 401 })
          case 'account_changed':
            return signInPage(reply, authz.client, authz.redirectUri, params, { error: 'The account changed while signing in. Sign in again.', status: 409 })
          case 'wrong_code':
            if (redeemed.exhausted) {
              return signInPage(reply, authz.client, authz.redirectUri, params, { error: 'The code is incorrect, and that was the last try. Sign in again.', status: 401 })
            }
            return codePage(reply, authz, params, mfaToken, { error: 'The code is incorrect.', status: 401 })
          case 'completed':
            await redeemed.attempt.succeeded(reply)
            return signedIn(request, reply, authz, params, redeemed.result)
        }
      }

      if (action !== 'sign-in') throw badRequest('The form is not one of these pages.')
      if (!email || !password) return signInPage(reply, authz.client, authz.redirectUri, params, { error: 'Enter your email and password.', email, status: 400 })
      let outcome
      try {
        outcome = await signInWithPassword(fastify, request, reply, { email, password }, {
          clientId: BROWSER_SIGN_IN,
          // A browser sign-in holds no scopes: each app's are decided when it asks.
          scope: () => '',
          complete: (account) => browserSessions.start({ userId: account.id, securityVersion: account.securityVersion, amr: AMR_PASSWORD })
        })
      } catch (error) {
        if (error instanceof BadCredentials || error instanceof AccountChanged) {
          return signInPage(reply, authz.client, authz.redirectUri, params, { error: error.message, email, status: 401 })
        }
        if (error instanceof EmailNotVerified) {
          return signInPage(reply, authz.client, authz.redirectUri, params, { error: error.message, email, status: 403 })
        }
        throw error
      }
      if (outcome.outcome === 'mfa_required') return codePage(reply, authz, params, outcome.mfaToken)
      return signedIn(request, reply, authz, params, outcome.result)
    }
  )

  /** The client a sign-out names, and the registered URI it may go back to. */
  async function signOutTarget(query: { id_token_hint?: string; client_id?: string; post_logout_redirect_uri?: string }) {
    let hinted: { sub?: string; aud?: string } | undefined
    if (query.id_token_hint) {
      try {
        hinted = (await verifyIdTokenHint(query.id_token_hint)) as { sub?: string; aud?: string }
      } catch {
        throw badRequest('The id_token_hint is not an ID token of this service.')
      }
    }
    const clientId = query.client_id ?? hinted?.aud
    if (query.client_id && hinted?.aud && query.client_id !== hinted.aud) throw badRequest('client_id and id_token_hint name different clients.')
    const client = clientId ? await oauth.findClient(clientId) : undefined
    if (query.post_logout_redirect_uri !== undefined && !client?.postLogoutRedirectUris.includes(query.post_logout_redirect_uri)) {
      // Never a redirect to a URI no client registered for this.
      throw badRequest('The post_logout_redirect_uri is not one the client registered.')
    }
    return { hinted, redirect: query.post_logout_redirect_uri }
  }

  async function signOut(request: FastifyRequest, reply: FastifyReply, target: { redirect?: string }, state: string | undefined) {
    const signIn = await browserSessions.find(request.cookies[SIGN_IN_COOKIE])
    await browserSessions.end(request.cookies[SIGN_IN_COOKIE])
    reply.clearCookie(SIGN_IN_COOKIE, { path: '/oauth' })
    if (signIn) await auditLog.record('signout', request, { userId: signIn.userId })
    if (target.redirect) return reply.redirect(redirectTo(target.redirect, { state }), 303)
    return reply.page('message', { title: 'Signed out', paragraphs: ['You are signed out of this browser.'] })
  }

  const logoutDescription =
    'OpenID Connect RP-Initiated Logout: ends the browser sign-in of the authorization endpoint. With an `id_token_hint` of the signed-in user it signs out at once; otherwise it asks first (a page with a form), so no other site can sign users out. `post_logout_redirect_uri` must be registered by the client (named by `client_id` or the hint); it gets `state` back. Apps end their own token sessions with `POST /auth/revoke` or `POST /auth/logout`.'

  fastify.get(
    '/oauth/logout',
    {
      config: { page: true },
      schema: {
        tags: ['OAuth and OpenID Connect'],
        operationId: 'endSession',
        summary: 'Sign out of the browser (end session)',
        description: logoutDescription,
        querystring: LogoutQuery,
        response: { ...pageHtml, 303: Type.Null({ description: 'To the post-logout redirect URI, with `state`.' }) }
      }
    },
    async (request, reply) => {
      const target = await signOutTarget(request.query)
      const signIn = await browserSessions.find(request.cookies[SIGN_IN_COOKIE])
      // Signed out at once only when the hint proves the request comes from the user's own app.
      if (!signIn || (target.hinted?.sub !== undefined && target.hinted.sub === signIn.userId)) {
        return signOut(request, reply, target, request.query.state)
      }
      const { _csrf: _ignored, ...params } = request.query
      return reply.page('sign-out', { title: 'Sign out?', params, csrf: reply.generateCsrf() }, 200, {
        formActions: target.redirect ? [formActionFor(target.redirect)] : []
      })
    }
  )

  fastify.post(
    '/oauth/logout',
    {
      config: { page: true },
      preHandler: csrfProtection,
      schema: {
        tags: ['OAuth and OpenID Connect'],
        operationId: 'endSessionConfirm',
        summary: 'Sign out of the browser: the confirmation form',
        description: logoutDescription,
        consumes: [FORM],
        body: LogoutQuery,
        response: { ...pageHtml, 303: Type.Null({ description: 'To the post-logout redirect URI, with `state`.' }) }
      }
    },
    async (request, reply) => signOut(request, reply, await signOutTarget(request.body), request.body.state)
  )

  fastify.get(
    '/account/signup',
    {
      config: { page: true },
      schema: {
        tags: ['OAuth and OpenID Connect'],
        operationId: 'signupPage',
        summary: 'The signup page',
        description: 'A form that creates an account as `POST /auth/signup` does, then leads back to the sign-in it came from.',
        querystring: Type.Object({ return_to: Type.Optional(Param) }),
        response: pageHtml
      }
    },
    async (request, reply) =>
      reply.page('signup', { title: 'Create an account', returnTo: safeReturn(request.query.return_to), minLength: config.PASSWORD_MIN_LENGTH, csrf: reply.generateCsrf() })
  )

  fastify.post(
    '/account/signup',
    {
      config: { page: true, rateLimit },
      preHandler: csrfProtection,
      schema: {
        tags: ['OAuth and OpenID Connect'],
        operationId: 'signupForm',
        summary: 'The signup form',
        description: 'Form-encoded, from the signup page (with its CSRF token). The same rules as `POST /auth/signup`.',
        consumes: [FORM],
        body: SignupForm,
        response: pageHtml
      }
    },
    async (request, reply) => {
      const { email, full_name: fullName, password } = request.body
      const returnTo = safeReturn(request.body.return_to)
      const again = (errors: string[], status: number) =>
        reply.page('signup', { title: 'Create an account', returnTo, minLength: config.PASSWORD_MIN_LENGTH, csrf: reply.generateCsrf(), errors, email, fullName }, status)
      try {
        await signUp(request, reply, { email: normalizeEmail(email), fullName: fullName.trim(), password })
      } catch (error) {
        if (error instanceof ProblemError && error.statusCode === 400) {
          return again((error.errors ?? []).map((problem) => `The password ${problem.message}.`), 400)
        }
        if (error instanceof ProblemError && error.statusCode === 409) return again(['An account with this email already exists.'], 409)
        throw error
      }
      const paragraphs = fastify.mail.enabled
        ? ['Your account is ready.', 'A link to confirm your email address is on its way to your inbox.']
        : ['Your account is ready.']
      return reply.page('message', { title: 'Account created', paragraphs, link: { href: returnTo, text: 'Sign in' } }, 201)
    }
  )
}

export default oauthAuthorizeRoutes
