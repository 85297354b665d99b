// Posts: the blog's public shape, its bodies and its list query.
import { Type, type Static } from '@sinclair/typebox'
import { refTo, Cursor, Id, Limit, Text, Timestamp } from './common.js'

export const Title = Text({ minLength: 1, maxLength: 200, examples: ['Hello, world'] })
export const Content = Text({ minLength: 1, maxLength: 50_000, examples: ['My first post.'] })

export const Post = Type.Object(
  {
    id: Id,
    title: Title,
    content: Content,
    author: Type.Object({ id: Id, full_name: Type.String() }),
    created_at: Timestamp,
    updated_at: Timestamp
  },
  {
    $id: 'Post',
    description: 'A blog post with its author.',
    examples: [
      {
        id: '0d5e8f7a-1b2c-4d3e-9f8a-7b6c5d4e3f2a',
        title: 'Hello, world',
        content: 'My first post.',
        author: { id: '6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f', full_name: 'Ada Lovelace' },
        created_at: '2026-01-15T10:00:00.000Z',
        updated_at: '2026-01-15T10:00:00.000Z'
      }
    ]
  }
)
export type PostDto = Static<typeof Post>
export const PostRef = refTo(Post)

export const CreatePostBody = Type.Object(
  { title: Title, content: Content },
  { additionalProperties: false, examples: [{ title: 'Hello, world', content: 'My first post.' }] }
)
export const UpdatePostBody = Type.Object(
  { title: Type.Optional(Title), content: Type.Optional(Content) },
  { additionalProperties: false, minProperties: 1, examples: [{ title: 'Hello again, world' }] }
)

export const PostsQuery = Type.Object(
  {
    limit: Limit,
    cursor: Type.Optional(Cursor),
    author_id: Type.Optional(Id)
  },
  { additionalProperties: false }
)
