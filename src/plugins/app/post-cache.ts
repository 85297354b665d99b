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

    const lookups = fastify.metrics.counter({
      name: 'blog_api_post_cache_lookups_total',
      help: 'Post reads by where the post came from: hit (memory), miss (database, then cached), bypass (database: cache off or listener down).',
      labelNames: ['result']
    })
    const hit = lookups.labels({ result: 'hit' })
    const miss = lookups.labels({ result: 'miss' })
    const bypass = lookups.labels({ result: 'bypass' })
    // Exported from the start (at 0), so a hit ratio exists before the first read.
    for (const result of [hit, miss, bypass]) result.inc(0)

    if (POST_CACHE_MB === 0) {
      fastify.decorate('postCache', {
        get: (_id, load) => {
          bypass.inc()
          return load()
        },
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

    fastify.metrics.gauge({
      name: 'blog_api_post_cache_entries',
      help: 'Posts held in memory.',
      collect() {
        this.set(posts.size)
      }
    })

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
        if (!notifications.listening) {
          bypass.inc()
          return load()
        }
        const cached = posts.get(id)
        if (cached) {
          hit.inc()
          return cached
        }
        miss.inc()
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
  { name: 'post-cache', dependencies: ['config', 'notifications', 'metrics'] }
)
