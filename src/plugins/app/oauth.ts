// The OAuth wing's shared services: the built-in public client, client
// lookup for the authorization endpoint, and the ID-token signer.
import fp from 'fastify-plugin'
import { builtInPublicClient, type OAuthClient, PUBLIC_CLIENT_ID } from '../../oauth/clients.js'
import { createIdTokenSigner, type IdTokenClaims } from '../../oauth/id-tokens.js'

export interface OAuthServices {
  /** The built-in public client (`public`): first-party tools and the docs page. */
  readonly publicClient: OAuthClient
  /** A client by its id: the built-in one, or a registered one; undefined when unknown. */
  findClient: (clientId: string) => Promise<OAuthClient | undefined>
  signIdToken: (claims: IdTokenClaims) => string
}

declare module 'fastify' {
  interface FastifyInstance {
    oauth: OAuthServices
  }
}

export default fp(
  async function oauthPlugin(fastify) {
    const publicClient = builtInPublicClient(fastify.config)
    const signIdToken = createIdTokenSigner(fastify.signingKeys, fastify.config.JWT_ISSUER)
    fastify.decorate('oauth', {
      publicClient,
      findClient: async (clientId) => (clientId === PUBLIC_CLIENT_ID ? publicClient : fastify.clientsRepository.find(clientId)),
      signIdToken
    } satisfies OAuthServices)
  },
  { name: 'oauth', dependencies: ['config', 'jwt', 'repositories'] }
)
