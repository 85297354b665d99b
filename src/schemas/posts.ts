// Posts: the blog's public shape, its bodies and its list query.
import { Type, type Static } from '@sinclair/typebox'
import { refTo, Cursor, Id, Limit, Timestamp } from './common.js'

export const Title = Type.String({ minLength: 1, maxLength: 200, examples: ['Hello, world'] })
export const Content = Type.String({ minLength: 1, maxLength: 50_000, examples: ['My first post.'] })

export const Post = Type.Object(
  {
    id: Id,
    title: Title,
    content: Content,
    author: Type.Object({ id: Id, full_name: Type.String() }),
    created_at: Timestamp,
    updated_at: Timestamp
  },
  { $id: 'Post' }
)
export type PostDto = Static<typeof Post>
export const PostRef = refTo(Post)

export const CreatePostBody = Type.Object({ title: Title, content: Content }, { additionalProperties: false })
export const UpdatePostBody = Type.Object(
  { title: Type.Optional(Title), content: Type.Optional(Content) },
  { additionalProperties: false, minProperties: 1 }
)

export const PostsQuery = Type.Object(
  {
    limit: Limit,
    cursor: Type.Optional(Cursor),
    author_id: Type.Optional(Id)
  },
  { additionalProperties: false }
)
