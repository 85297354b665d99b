// Recently read posts, kept in memory so that reading a post usually costs no
// database round trip (the round trip is nearly all of a read's cost).
//
// A cached post is never served stale past a change that this instance could
// know about:
// - Database triggers (see the `post_change_notifications` migration) notify
//   every instance on commit of any change to a post or to an author's name,
//   whoever makes it; the entry is forgotten when the notification arrives.
// - The instance that makes a change forgets the entry at once as well, so its
//   own client reads its write back without waiting for the notification.
// - A read that raced with a change is not cached: a lookup remembers its
//   result only if nothing was forgotten while it ran.
// - While the notification listener is disconnected nothing is cached or
//   served from memory, and everything is forgotten when it reconnects
//   (notifications sent in between are lost).
// - Entries expire after POST_CACHE_TTL whatever happens, and the cache holds
//   at most POST_CACHE_MB, least recently read first out.
import fp from 'fastify-plugin'
import { LRUCache } from 'lru-cache'
import type { PostView } from '../../repositories/posts.js'

export const POST_CHANGES_CHANNEL = 'post_changes'

export interface PostCache {
  /** The post from memory, or from `load` (remembered when that is safe). */
  get(id: string, load: () => Promise<PostView | undefined>): Promise<PostView | undefined>
  /** Forgets a post this instance just changed or deleted. */
  forgetPost(id: string): void
  /** Forgets the posts of an author whose name this instance just changed. */
  forgetAuthor(authorId: string): void
  /** Posts in memory now. */
  readonly size: number
}

declare module 'fastify' {
  interface FastifyInstance {
    postCache: PostCache
  }
}

/** Roughly the bytes a post takes in memory: its strings (two bytes a character) and some overhead. */
function sizeOf(post: PostView): number {
  const { dto } = post
  return 2 * (dto.title.length + dto.content.length + dto.author.full_name.length) + 512
}

export default fp(
  async function postCachePlugin(fastify) {
    const { POST_CACHE_MB, POST_CACHE_TTL } = fastify.config
    const { notifications } = fastify

    if (POST_CACHE_MB === 0) {
      fastify.decorate('postCache', {
        get: (_id, load) => load(),
        forgetPost: () => undefined,
        forgetAuthor: () => undefined,
        size: 0
      } satisfies PostCache)
      return
    }

    const posts = new LRUCache<string, PostView>({
      maxSize: POST_CACHE_MB * 1024 * 1024,
      sizeCalculation: sizeOf,
      ttl: POST_CACHE_TTL * 1000,
      // Expiry is checked on read; nothing runs on a timer.
      ttlAutopurge: false
    })
    // Bumped whenever anything is forgotten: a lookup that saw it change while
    // it ran may have read the old row, so it does not remember it.
    let forgotten = 0

    const forgetPost = (id: string) => {
      forgotten++
      posts.delete(id)
    }
    const forgetAuthor = (authorId: string) => {
      forgotten++
      for (const [id, post] of posts.entries()) if (post.authorId === authorId) posts.delete(id)
    }
    const forgetAll = () => {
      forgotten++
      posts.clear()
    }

    notifications.subscribe(POST_CHANGES_CHANNEL, {
      message(payload) {
        if (payload.startsWith('post:')) forgetPost(payload.slice(5))
        else if (payload.startsWith('author:')) forgetAuthor(payload.slice(7))
        else forgetAll()
      },
      resync: forgetAll,
      lost: forgetAll
    })

    fastify.decorate('postCache', {
      async get(id, load) {
        if (!notifications.listening) return load()
        const cached = posts.get(id)
        if (cached) return cached
        const before = forgotten
        const post = await load()
        if (post && forgotten === before && notifications.listening) posts.set(id, post)
        return post
      },
      forgetPost,
      forgetAuthor,
      get size() {
        return posts.size
      }
    } satisfies PostCache)
  },
  { name: 'post-cache', dependencies: ['config', 'notifications'] }
)
