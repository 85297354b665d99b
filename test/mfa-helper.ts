// What the multi-factor tests share: a clock the service judges codes by,
// which the tests step through time with (so no test waits for a real
// 30-second step, or depends on where in one it runs), and the steps of
// enrolling and signing in with a second factor, computing codes with the
// test's own TOTP (test/otp.ts).
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { expect } from 'vitest'
import { codeAt } from './otp.js'
import { bearer, clientAddress, PASSWORD, tokenRequest, userWithToken } from './helper.js'

export const MFA_GRANT = 'urn:blog-api:grant-type:mfa-otp'

/** The service's MFA clock, set to a fixed time that moves only when told to. */
export function stepClock(app: FastifyInstance, start = Date.now()) {
  let now = start
  app.mfa.clock.now = () => now
  return {
    get now() {
      return now
    },
    /** Moves the clock by whole 30-second steps. */
    step(steps = 1) {
      now += steps * 30_000
    },
    advance(seconds: number) {
      now += seconds * 1000
    }
  }
}

export type Clock = ReturnType<typeof stepClock>

export interface MfaUser {
  id: string
  email: string
  headers: { authorization: string }
  tokens: { access_token: string; refresh_token?: string }
  secret: string
  recoveryCodes: string[]
}

export const post = (app: FastifyInstance, url: string, headers: Record<string, string>, payload: Record<string, string>) =>
  app.inject({ method: 'POST', url, headers, payload, remoteAddress: clientAddress() })

export const startEnrolment = (app: FastifyInstance, headers: Record<string, string>, password = PASSWORD) =>
  post(app, '/users/me/mfa/totp', headers, { current_password: password })

export const confirm = (app: FastifyInstance, headers: Record<string, string>, code: string) =>
  post(app, '/users/me/mfa/totp/confirm', headers, { code })

/** A signed-up, logged-in user who turned MFA on (with the clock's current code), logged in with the session that did it. */
export async function mfaUser(app: FastifyInstance, clock: Clock): Promise<MfaUser> {
  const user = await userWithToken(app)
  const started = await startEnrolment(app, user.headers)
  expect(started.statusCode, started.body).toBe(201)
  const { secret } = started.json<{ secret: string }>()
  const confirmed = await confirm(app, user.headers, codeAt(secret, clock.now))
  expect(confirmed.statusCode, confirmed.body).toBe(200)
  return { ...user, secret, recoveryCodes: confirmed.json<{ recovery_codes: string[] }>().recovery_codes }
}

/** The password step of a sign-in: its answer, and the mfa_token of a 403. */
export async function passwordStep(app: FastifyInstance, email: string, extra: Record<string, string> = {}, headers: Record<string, string> = {}, address = clientAddress()) {
  const response = await tokenRequest(app, { grant_type: 'password', username: email, password: PASSWORD, ...extra }, headers, address)
  const body = response.json<{ mfa_token?: string }>()
  return { response, mfaToken: body.mfa_token ?? '' }
}

/** The code step of a sign-in. */
export const codeStep = (
  app: FastifyInstance,
  mfaToken: string,
  otp: string,
  headers: Record<string, string> = {},
  address = clientAddress()
): Promise<LightMyRequestResponse> => tokenRequest(app, { grant_type: MFA_GRANT, mfa_token: mfaToken, otp }, headers, address)

/** Both steps, with the code of the clock's next step: answers the tokens. */
export async function signIn(app: FastifyInstance, clock: Clock, user: MfaUser) {
  const { mfaToken } = await passwordStep(app, user.email)
  clock.step()
  const answer = await codeStep(app, mfaToken, codeAt(user.secret, clock.now))
  expect(answer.statusCode, answer.body).toBe(200)
  const tokens = answer.json<{ access_token: string; refresh_token: string; scope: string }>()
  return { ...tokens, headers: bearer(tokens.access_token) }
}
