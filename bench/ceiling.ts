// The ceiling: a bare Fastify server answering a small JSON object with a
// response schema, no plugins, no hooks, no database. Whatever the service
// does on top of this costs throughput; this is what the same machine, Node
// and load generator allow at most.
import Fastify from 'fastify'

const fastify = Fastify({ logger: false })
fastify.get(
  '/',
  { schema: { response: { 200: { type: 'object', properties: { hello: { type: 'string' } } } } } },
  async () => ({ hello: 'world' })
)
await fastify.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 3100) })
