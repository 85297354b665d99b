// A browser for tests of the OAuth pages, through `inject`: it keeps cookies
// (as a browser would: by name, dropped when cleared), reads the hidden fields
// of the page's form, and posts forms as `application/x-www-form-urlencoded`.
// It follows no redirect by itself: tests look at each step.
import { createHash, randomBytes } from 'node:crypto'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { clientAddress } from './helper.js'

const decodeEntities = (text: string) =>
  text.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')

/** The hidden fields of the first form of a page. */
export function hiddenFields(html: string): Record<string, string> {
  const fields: Record<string, string> = {}
  for (const match of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    fields[decodeEntities(match[1] ?? '')] = decodeEntities(match[2] ?? '')
  }
  return fields
}

export class TestBrowser {
  readonly cookies = new Map<string, string>()
  /** One address per browser: a person at one machine. */
  readonly address = clientAddress()

  constructor(private readonly app: FastifyInstance) {}

  private keep(response: LightMyRequestResponse) {
    for (const cookie of response.cookies) {
      if (cookie.value === '' || (cookie.maxAge !== undefined && cookie.maxAge <= 0) || (cookie.expires && cookie.expires.getTime() <= Date.now())) {
        this.cookies.delete(cookie.name)
      } else {
        this.cookies.set(cookie.name, cookie.value)
      }
    }
    return response
  }

  async get(url: string, headers: Record<string, string> = {}) {
    return this.keep(await this.app.inject({ method: 'GET', url, headers, cookies: Object.fromEntries(this.cookies), remoteAddress: this.address }))
  }

  async post(url: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
    return this.keep(
      await this.app.inject({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        payload: new URLSearchParams(fields).toString(),
        cookies: Object.fromEntries(this.cookies),
        remoteAddress: this.address
      })
    )
  }

  /** Submits the page's form with its hidden fields and `fields`. */
  async submit(page: LightMyRequestResponse, url: string, fields: Record<string, string>) {
    return this.post(url, { ...hiddenFields(page.body), ...fields })
  }
}

/** A PKCE pair: a random verifier and its S256 challenge. */
export function pkce() {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

/** The query of a redirect's Location as an object. */
export function redirectParams(response: LightMyRequestResponse): Record<string, string> {
  const location = String(response.headers.location ?? '')
  return Object.fromEntries(new URL(location).searchParams)
}
