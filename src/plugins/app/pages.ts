// Server-rendered pages for browsers (the pages a link in an email opens, and
// any later sign-in or consent page): Eta templates in views/pages/, rendered
// inside one layout by @fastify/view.
//
// A route serves a page by declaring `config: { page: true }` and answering
// `reply.page(template, data, status)`. Such a route's errors (a refused form,
// a rate limit, the database down) are pages too: the one error handler
// renders `error.eta` for it instead of problem details. A page's form posts
// `application/x-www-form-urlencoded` (the route lists it in
// `schema.consumes`, and the strict form parser reads it), so the pages work
// without JavaScript.
//
// Every page gets a strict Content-Security-Policy: no script at all, styles
// only from the service's own stylesheet (PAGE_STYLESHEET), forms only to
// this origin, never framed. Pages are never cached (they may carry a link's
// token or an account's data). No page here sets or reads a cookie, so none
// needs a CSRF token; a page that signs in with a cookie must add one.
import { readFileSync } from 'node:fs'
import view from '@fastify/view'
import { Type } from '@sinclair/typebox'
import { Eta } from 'eta'
import type { FastifyReply } from 'fastify'
import fp from 'fastify-plugin'
import { VIEWS_DIR } from '../../lib/views.js'

export interface PageOptions {
  /**
   * Where the page's form may lead besides this origin: browsers apply
   * `form-action` to the redirect that answers a form too, so a sign-in that
   * ends with a redirect to an app names the app's origin here.
   */
  formActions?: string[]
}

/** What a template is given: its title, and whatever else it shows. */
export interface PageData {
  title: string
  [name: string]: unknown
}

declare module 'fastify' {
  interface FastifyReply {
    /** Answers with `views/pages/<template>.eta` in the layout, and the pages' headers. */
    page(template: string, data: PageData, status?: number, options?: PageOptions): Promise<FastifyReply>
  }
  interface FastifyContextConfig {
    /** The route serves pages: its errors are rendered as pages too. */
    page?: boolean
  }
}

/** The one stylesheet of every page, served by the service (CSP `style-src 'self'`). */
export const PAGE_STYLESHEET = '/assets/pages.css'

const pageCsp = (formActions: string[] = []) =>
  [
    "default-src 'none'",
    "style-src 'self'",
    "img-src 'self'",
    ["form-action 'self'", ...formActions].join(' '),
    "frame-ancestors 'none'",
    "base-uri 'none'"
  ].join('; ')

export const PAGE_CSP = pageCsp()

const PAGE_HEADERS = {
  'content-security-policy': PAGE_CSP,
  'cache-control': 'no-store',
  'content-type': 'text/html; charset=utf-8'
}

/** An HTML answer, as the OpenAPI document describes it. */
export const HtmlPage = (description: string) =>
  Type.Unsafe<string>({ description, content: { 'text/html': { schema: { type: 'string' } } } })

/** HTML answers by status, for a page route's `response`, with the error page every page may show. */
export const pageResponses = (descriptions: Record<number, string>) =>
  Object.fromEntries(
    [...Object.entries(descriptions), ['default', 'An error page: unexpected (500), or the service unavailable (503).'] as const].map(
      ([status, description]) => [status, HtmlPage(description)]
    )
  )

export default fp(
  async function pagesPlugin(fastify) {
    const stylesheet = readFileSync(`${VIEWS_DIR}pages/pages.css`)

    await fastify.register(view, {
      engine: { eta: new Eta({ autoEscape: true }) },
      root: `${VIEWS_DIR}pages`,
      layout: 'layout.eta',
      // Templates are read once and kept, whatever NODE_ENV says.
      production: true,
      defaultContext: { productName: fastify.config.PRODUCT_NAME, stylesheet: PAGE_STYLESHEET }
    })

    fastify.decorateReply('page', async function page(this: FastifyReply, template: string, data: PageData, status = 200, options: PageOptions = {}) {
      const html = await this.viewAsync(`${template}.eta`, data)
      const headers = options.formActions?.length ? { ...PAGE_HEADERS, 'content-security-policy': pageCsp(options.formActions) } : PAGE_HEADERS
      return this.code(status).headers(headers).send(html)
    })

    fastify.get(
      PAGE_STYLESHEET,
      { schema: { hide: true } },
      async (_request, reply) => reply.header('content-type', 'text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(stylesheet)
    )
  },
  { name: 'pages', dependencies: ['config'] }
)
