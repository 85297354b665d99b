// Who is asking at the token endpoint (and the introspection endpoint): a
// confidential client that proves itself (RFC 6749 §2.3.1: HTTP Basic with
// form-encoded id and secret, or `client_id`/`client_secret` in the body,
// never both), a registered public client named by `client_id`, or the
// built-in public client `public`. Naming a confidential client without its
// secret is `invalid_client`: it must authenticate (§3.2.1), and a refresh
// token bound to it is redeemed by it alone (§6).
import type { FastifyRequest } from 'fastify'
import { OAuthError } from '../lib/errors.js'
import type { AuditLog } from '../repositories/audit.js'
import type { ClientsRepository } from '../repositories/clients.js'
import { type OAuthClient, PUBLIC_CLIENT_ID } from './clients.js'

export interface RequestingClient extends OAuthClient {
  /** Authenticated with a secret. */
  confidential: boolean
  /** The secret generation it authenticated with (the `sid` of its own tokens). */
  secretId?: string
  /** Whether it authenticated with HTTP Basic (failures then carry a Basic challenge). */
  viaBasic: boolean
}

interface ClientCredentials {
  clientId: string
  clientSecret: string
  viaBasic: boolean
}

const malformedBasic = () => new OAuthError('invalid_client', 'Malformed HTTP Basic credentials.', { basicChallenge: true })

/**
 * The client credentials of a token request, if any. An empty Basic pair (as
 * API consoles such as Swagger UI send for public clients) counts as none.
 */
function clientCredentials(request: FastifyRequest, body: { client_id?: string; client_secret?: string }) {
  const header = request.headers.authorization
  let basic: ClientCredentials | undefined
  if (header && /^Basic /i.test(header)) {
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8')
    const separator = decoded.indexOf(':')
    if (separator < 0) throw malformedBasic()
    try {
      basic = {
        clientId: decodeURIComponent(decoded.slice(0, separator).replace(/\+/g, ' ')),
        clientSecret: decodeURIComponent(decoded.slice(separator + 1).replace(/\+/g, ' ')),
        viaBasic: true
      }
    } catch {
      throw malformedBasic()
    }
    // The public client has no secret: naming it is the same as sending nothing.
    if (!basic.clientSecret && (!basic.clientId || basic.clientId === PUBLIC_CLIENT_ID)) basic = undefined
  }
  const inBody = body.client_secret !== undefined
  if (basic && (inBody || body.client_id)) {
    throw new OAuthError('invalid_request', 'Send client credentials with HTTP Basic or in the body, not both.')
  }
  if (basic) return basic
  if (inBody) return { clientId: body.client_id ?? '', clientSecret: body.client_secret ?? '', viaBasic: false }
  return undefined
}

/**
 * The client of a token request; throws `invalid_client` when it names one it
 * cannot prove to be. `builtIn` is the built-in public client.
 */
export async function requestingClient(
  request: FastifyRequest,
  body: { client_id?: string; client_secret?: string },
  clients: ClientsRepository,
  auditLog: AuditLog,
  builtIn: OAuthClient
): Promise<RequestingClient> {
  const credentials = clientCredentials(request, body)
  if (!credentials) {
    const named = body.client_id
    if (named === undefined || named === '' || named === PUBLIC_CLIENT_ID) return { ...builtIn, confidential: false, viaBasic: false }
    // A registered public client names itself; a confidential one must prove itself.
    const client = await clients.find(named)
    if (client?.isPublic) return { ...client, confidential: false, viaBasic: false }
    throw new OAuthError('invalid_client', 'Client authentication failed.')
  }
  const client = await clients.authenticate(credentials.clientId, credentials.clientSecret)
  if (!client) {
    await auditLog.record('client.failure', request, {
      details: { attempted_client_id: credentials.clientId.slice(0, 100) }
    })
    throw new OAuthError('invalid_client', 'Client authentication failed.', { basicChallenge: credentials.viaBasic })
  }
  return { ...client, confidential: true, viaBasic: credentials.viaBasic }
}
