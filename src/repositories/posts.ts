// Posts: the blog's reads and writes. Updates are conditional on the version
// the caller saw, so a concurrent edit is a 412, never a lost update.
//
// The reads and the insert are typed SQL through Prisma, each one statement:
// a post with its author is a plain join (Prisma's relation query builds a
// JSON object per row in a lateral subquery), a page is a keyset range of
// an index, and a new post comes back with its author from the INSERT
// itself (Prisma writes it in four round trips: BEGIN, INSERT, SELECT,
// COMMIT). These are the service's most frequent database routes.
import { randomUUID } from 'node:crypto'
import { Prisma, type PrismaClient } from '../generated/prisma/client.js'
import type { PostDto } from '../schemas/posts.js'
import { decodeCursor, keyset, toPage } from './cursor.js'

/** A post as the queries below return it. */
interface PostRecord {
  id: string
  title: string
  content: string
  version: number
  author_id: string
  full_name: string
  created_at: Date
  updated_at: Date
}

export interface PostRow {
  id: string
  title: string
  content: string
  version: number
  authorId: string
  createdAt: Date
  updatedAt: Date
  author: { id: string; fullName: string }
}

const toPostRow = (record: PostRecord): PostRow => ({
  id: record.id,
  title: record.title,
  content: record.content,
  version: record.version,
  authorId: record.author_id,
  createdAt: record.created_at,
  updatedAt: record.updated_at,
  author: { id: record.author_id, fullName: record.full_name }
})

const POST_COLUMNS = Prisma.sql`p.id, p.title, p.content, p.version, p.author_id, u.full_name, p.created_at, p.updated_at`

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

export interface PostsPageQuery {
  limit: number
  cursor?: string
  authorId?: string
}

/**
 * One page of posts, newest first, with one more post than the page holds.
 * The page's posts first, then their authors: joined before the LIMIT,
 * PostgreSQL plans the join for every post after the cursor (and sizes a
 * cache of authors for all of them, which cost more than the page itself).
 */
export function postsPageSql(query: PostsPageQuery): Prisma.Sql {
  const within = query.authorId ? { column: 'author_id', value: Prisma.sql`${query.authorId}::uuid` } : undefined
  const page = keyset(decodeCursor(query.cursor), 'desc', { within })
  return Prisma.sql`
    SELECT ${POST_COLUMNS}
    FROM (SELECT * FROM posts WHERE ${page.where} ORDER BY ${page.orderBy} LIMIT ${query.limit + 1}) p
    JOIN users u ON u.id = p.author_id
    ORDER BY ${keyset(undefined, 'desc', { alias: 'p' }).orderBy}`
}

export function createPostsRepository(prisma: PrismaClient) {
  async function find(id: string): Promise<PostRow | undefined> {
    const [record] = await prisma.$queryRaw<PostRecord[]>`
      SELECT ${POST_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id WHERE p.id = ${id}::uuid`
    return record && toPostRow(record)
  }

  return {
    async list(query: PostsPageQuery) {
      const records = await prisma.$queryRaw<PostRecord[]>(postsPageSql(query))
      return toPage(records.map(toPostRow), query.limit, toPostDto)
    },

    find,

    /** The post as readers get it. */
    async view(id: string): Promise<PostView | undefined> {
      const post = await find(id)
      return post && { dto: toPostDto(post), etag: postEtag(post), authorId: post.authorId }
    },

    /** Ids and timestamps are made here, as Prisma's `@default(uuid())` and `@default(now())` would make them. */
    async create(authorId: string, input: { title: string; content: string }): Promise<PostRow> {
      const now = new Date()
      const [record] = await prisma.$queryRaw<PostRecord[]>`
        WITH p AS (
          INSERT INTO posts (id, title, content, author_id, created_at, updated_at)
          VALUES (${randomUUID()}::uuid, ${input.title}, ${input.content}, ${authorId}::uuid, ${now}::timestamptz, ${now}::timestamptz)
          RETURNING *
        )
        SELECT ${POST_COLUMNS} FROM p JOIN users u ON u.id = p.author_id`
      if (!record) throw new Error('the new post has no author')
      return toPostRow(record)
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
