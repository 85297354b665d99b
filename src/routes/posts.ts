// The blog: anyone reads; users with `posts:write` write; only the author (with
// `posts:write`) or a holder of `posts:moderate` changes or deletes a post,
// with optimistic concurrency (If-Match). Powers come from the token's scopes
// only: an admin's token narrowed to `posts:write` edits only its own posts.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { forbidden, notFound, ProblemError } from '../lib/errors.js'
import { trimFields } from '../lib/trim.js'
import { postEtag, toPostDto } from '../repositories/posts.js'
import { type HeaderDocs, IdParams, NoContent, Page, problems, refTo } from '../schemas/common.js'
import { CreatePostBody, Post, PostsQuery, UpdatePostBody } from '../schemas/posts.js'

const writeProblems = {
  400: 'Invalid body',
  401: 'Missing, invalid or revoked token',
  403: 'Neither the author (with posts:write) nor a holder of posts:moderate',
  404: 'Unknown post',
  412: 'The post changed since the If-Match version'
}

// Reads are public; a token that is sent anyway is checked.
const tokenOptional = 'No token is needed; a token that is sent must be valid (401 otherwise).'
const optionalSecurity: Record<string, string[]>[] = [{}, { oauth2: [] }]
const invalidToken = 'A token was sent and is invalid, expired or revoked'

const etagHeader: HeaderDocs = {
  ETag: { type: 'string', description: 'The version of the post: send it back as `If-Match` when you change it.' }
}

/** RFC 9110 §13.1.1: `*`, or a list of strong ETags one of which must match. */
function ifMatchFails(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  if (header.trim() === '*') return false
  return !header.split(',').some((candidate) => candidate.trim() === etag)
}

function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  if (header.trim() === '*') return true
  return header.split(',').some((candidate) => candidate.trim().replace(/^W\//, '') === etag)
}

const postsRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { postsRepository: posts, postCache } = fastify
  // Reading needs no token, but a token that is sent must be valid (RFC 6750 §3.1).
  const reader = [fastify.authenticateIfPresent]
  const author = [fastify.authenticate, fastify.requireScope('posts:write'), fastify.requireUser]

  /** The post, if the caller may change it: else 404 or 403. Also checks If-Match. */
  async function editablePost(request: FastifyRequest, id: string) {
    const post = await posts.find(id)
    if (!post) throw notFound('Post')
    const { user } = request
    const isAuthor = user.kind === 'user' && post.authorId === user.id && user.scopes.has('posts:write')
    if (!isAuthor && !user.scopes.has('posts:moderate')) {
      throw forbidden('Only the author (with posts:write) or a moderator (posts:moderate) may change this post.')
    }
    if (ifMatchFails(request.headers['if-match'], postEtag(post))) {
      throw new ProblemError(412, 'The post has changed since you read it; fetch it again.')
    }
    return post
  }

  fastify.get(
    '/posts',
    {
      onRequest: reader,
      schema: {
        tags: ['Posts'],
        operationId: 'listPosts',
        summary: 'List posts',
        description: `Newest first. Filter by \`author_id\`; pass \`next_cursor\` as \`cursor\` for the next page. ${tokenOptional}`,
        security: optionalSecurity,
        querystring: PostsQuery,
        response: {
          200: Page(Post, 'A page of posts, newest first.'),
          ...problems({ 400: 'Invalid query', 401: invalidToken })
        }
      }
    },
    async (request) =>
      posts.list({ limit: request.query.limit, cursor: request.query.cursor, authorId: request.query.author_id })
  )

  fastify.get(
    '/posts/:id',
    {
      onRequest: reader,
      schema: {
        tags: ['Posts'],
        operationId: 'getPost',
        summary: 'A post',
        description: `Answers with an \`ETag\`; send it back as \`If-Match\` when you update, or \`If-None-Match\` to get 304. ${tokenOptional}`,
        security: optionalSecurity,
        params: IdParams,
        response: {
          200: refTo(Post, 'The post.', { headers: etagHeader }),
          304: NoContent('Not modified: the `If-None-Match` version is current.'),
          ...problems({ 400: 'Invalid id', 401: invalidToken, 404: 'Unknown post' })
        }
      }
    },
    async (request, reply) => {
      const { id } = request.params
      const post = await postCache.get(id, () => posts.view(id))
      if (!post) throw notFound('Post')
      reply.header('etag', post.etag)
      if (ifNoneMatchHits(request.headers['if-none-match'], post.etag)) return reply.code(304).send()
      return post.dto
    }
  )

  fastify.post(
    '/posts',
    {
      onRequest: author,
      bodyLimit: fastify.config.BODY_LIMIT,
      preValidation: trimFields(['title', 'content']),
      schema: {
        tags: ['Posts'],
        operationId: 'createPost',
        summary: 'Publish a post',
        description:
          'Publishes a post as the caller. `title` (1 to 200 characters) and `content` (1 to 50 000) are trimmed. Needs a user token with `posts:write`.',
        security: [{ oauth2: ['posts:write'] }],
        body: CreatePostBody,
        response: {
          201: refTo(Post, 'The new post.', {
            headers: { ...etagHeader, Location: { type: 'string', description: 'The path of the new post.' } }
          }),
          ...problems({
            400: 'Invalid body',
            401: writeProblems[401],
            403: 'Missing posts:write, or a service client (posts need an author)'
          })
        }
      }
    },
    async (request, reply) => {
      const post = await posts.create(request.user.id, request.body)
      return reply.code(201).header('location', `/posts/${post.id}`).header('etag', postEtag(post)).send(toPostDto(post))
    }
  )

  fastify.patch(
    '/posts/:id',
    {
      onRequest: [fastify.authenticate],
      bodyLimit: fastify.config.BODY_LIMIT,
      preValidation: trimFields(['title', 'content']),
      schema: {
        tags: ['Posts'],
        operationId: 'updatePost',
        summary: 'Edit a post',
        description:
          'The author (with `posts:write`), or a holder of `posts:moderate`. Send `If-Match` with the ETag you read to avoid overwriting a newer edit (412).',
        security: [{ oauth2: ['posts:write'] }, { oauth2: ['posts:moderate'] }],
        params: IdParams,
        body: UpdatePostBody,
        response: { 200: refTo(Post, 'The edited post.', { headers: etagHeader }), ...problems(writeProblems) }
      }
    },
    async (request, reply) => {
      const post = await editablePost(request, request.params.id)
      const updated = await posts.update(post.id, post.version, request.body)
      if (!updated) throw new ProblemError(412, 'The post changed while you were editing it; fetch it again.')
      postCache.forgetPost(post.id)
      return reply.header('etag', postEtag(updated)).send(toPostDto(updated))
    }
  )

  fastify.delete(
    '/posts/:id',
    {
      onRequest: [fastify.authenticate],
      schema: {
        tags: ['Posts'],
        operationId: 'deletePost',
        summary: 'Delete a post',
        description: 'The author (with `posts:write`), or a holder of `posts:moderate`. Honours `If-Match`.',
        security: [{ oauth2: ['posts:write'] }, { oauth2: ['posts:moderate'] }],
        params: IdParams,
        response: { 204: NoContent('Deleted.'), ...problems({ ...writeProblems, 400: 'Invalid id' }) }
      }
    },
    async (request, reply) => {
      const post = await editablePost(request, request.params.id)
      if (!(await posts.delete(post.id, post.version))) {
        throw new ProblemError(412, 'The post changed while you were deleting it; fetch it again.')
      }
      postCache.forgetPost(post.id)
      return reply.code(204).send()
    }
  )
}

export default postsRoutes
