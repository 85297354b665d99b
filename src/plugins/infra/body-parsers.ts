// The two body formats the API reads, JSON and HTML forms, parsed strictly.
// Bodies are read as bytes and decoded as UTF-8 with `fatal: true`: Fastify's
// own parsers decode leniently, which would turn invalid bytes into U+FFFD and
// store them. Form values are percent-decoded strictly too (`%FF`, `%zz` are
// refused), so a malformed body is a 400, never a silently altered value.
// Forms are read only by the routes that declare them in `schema.consumes`
// (the OAuth2 endpoints); elsewhere a form body is a 415.
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'

const FORM = 'application/x-www-form-urlencoded'

/** A 4xx that the error handler answers with its message (problem, or RFC 6749 error on the token endpoint). */
function badBody(message: string, statusCode = 400): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode })
}

/** JSON and forms are UTF-8 (RFC 8259 §8.1, WHATWG URL): a body declared as anything else is refused. */
function assertUtf8Charset(request: FastifyRequest) {
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(request.headers['content-type'] ?? '')?.[1]
  if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
    throw badBody(`Bodies must be UTF-8, not ${charset.slice(0, 40)}.`, 415)
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false })

function decodeUtf8(body: Buffer): string {
  try {
    return utf8.decode(body)
  } catch {
    throw badBody('The body is not valid UTF-8.')
  }
}

function decodeFormComponent(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '))
  } catch {
    throw badBody('The form body has a malformed percent-encoding or is not valid UTF-8.')
  }
}

/**
 * application/x-www-form-urlencoded (WHATWG URL §5.1) with strict decoding.
 * A name given twice becomes an array, which the route schemas refuse (RFC 6749 §3.1:
 * parameters must not be repeated).
 */
export function parseForm(text: string): Record<string, string | string[]> {
  const result: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>
  for (const pair of text.split('&')) {
    if (pair === '') continue
    const separator = pair.indexOf('=')
    const name = decodeFormComponent(separator === -1 ? pair : pair.slice(0, separator))
    const value = decodeFormComponent(separator === -1 ? '' : pair.slice(separator + 1))
    const previous = result[name]
    if (previous === undefined) result[name] = value
    else result[name] = Array.isArray(previous) ? [...previous, value] : [previous, value]
  }
  return result
}

export default fp(
  async function bodyParsersPlugin(fastify) {
    // Nothing reads plain text: such a body is a 415, not a string for the schema to refuse.
    fastify.removeContentTypeParser('text/plain')
    const parseJson = fastify.getDefaultJsonParser('error', 'error')
    fastify.removeContentTypeParser('application/json')
    fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
      assertUtf8Charset(request)
      // The default parser answers through `done`; it returns nothing to wait for.
      void parseJson(request, decodeUtf8(body as Buffer), done)
    })

    // OAuth2 clients send forms, and forms are small: a tighter limit than JSON bodies.
    fastify.addContentTypeParser(FORM, { parseAs: 'buffer', bodyLimit: 64 * 1024 }, (request, body, done) => {
      // An unknown route (url undefined) goes on to its 404.
      const consumes = request.routeOptions.schema?.consumes
      if (request.routeOptions.url !== undefined && !consumes?.includes(FORM)) {
        throw badBody('This route reads JSON bodies, not forms.', 415)
      }
      assertUtf8Charset(request)
      done(null, parseForm(decodeUtf8(body as Buffer)))
    })
  },
  { name: 'body-parsers' }
)
