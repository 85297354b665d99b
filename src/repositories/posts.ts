// Posts: the blog's reads and writes. Updates are conditional on the version
// the caller saw, so a concurrent edit is a 412, never a lost update.
import type { PrismaClient } from '../generated/prisma/client.js'
import type { PostDto } from '../schemas/posts.js'
import { pageQuery, toPage } from './cursor.js'

const postSelect = {
  id: true,
  title: true,
  content: true,
  version: true,
  authorId: true,
  createdAt: true,
  updatedAt: true,
  author: { select: { id: true, fullName: true } }
} as const

interface PostRow {
  id: string
  title: string
  content: string
  version: number
  authorId: string
  createdAt: Date
  updatedAt: Date
  author: { id: string; fullName: string }
}

export function toPostDto(post: PostRow): PostDto {
  return {
    id: post.id,
    title: post.title,
    content: post.content,
    author: { id: post.author.id, full_name: post.author.fullName },
    created_at: post.createdAt.toISOString(),
    updated_at: post.updatedAt.toISOString()
  }
}

/** The strong ETag of a post version. */
export const postEtag = (post: { id: string; version: number }) => `"${post.id.slice(0, 8)}-v${post.version}"`

/** A post as readers get it: its body, its ETag, and its author (to forget it when the author's name changes). */
export interface PostView {
  dto: PostDto
  etag: string
  authorId: string
}

export function createPostsRepository(prisma: PrismaClient) {
  async function find(id: string): Promise<PostRow | undefined> {
    return (await prisma.post.findUnique({ where: { id }, select: postSelect })) ?? undefined
  }

  return {
    async list(query: { limit: number; cursor?: string; authorId?: string }) {
      const page = pageQuery(query, 'desc')
      const rows = await prisma.post.findMany({
        ...page,
        where: { ...(query.authorId ? { authorId: query.authorId } : {}), ...page.where },
        select: postSelect
      })
      return toPage(rows, query.limit, toPostDto)
    },

    find,

    /** The post as readers get it. */
    async view(id: string): Promise<PostView | undefined> {
      const post = await find(id)
      return post && { dto: toPostDto(post), etag: postEtag(post), authorId: post.authorId }
    },

    async create(authorId: string, input: { title: string; content: string }) {
      return prisma.post.create({ data: { ...input, authorId }, select: postSelect })
    },

    /** Applies the change if the post is still at `version`; undefined when it moved on. */
    async update(id: string, version: number, changes: { title?: string; content?: string }) {
      const updated = await prisma.post.updateMany({
        where: { id, version },
        data: { ...changes, version: { increment: 1 }, updatedAt: new Date() }
      })
      if (updated.count === 0) return undefined
      return find(id)
    },

    async delete(id: string, version: number) {
      const deleted = await prisma.post.deleteMany({ where: { id, version } })
      return deleted.count > 0
    }
  }
}

export type PostsRepository = ReturnType<typeof createPostsRepository>
