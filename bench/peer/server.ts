// The peer: the authenticated `GET /posts/:id` as it is usually written with
// Express 5, jsonwebtoken and Prisma, on the same database and with the same
// tokens as the service. Kept the way a tutorial writes it: an auth
// middleware that verifies the bearer token, a route that asks Prisma for the
// post and its author, and res.json().
import { PrismaPg } from '@prisma/adapter-pg'
import express, { type NextFunction, type Request, type Response } from 'express'
import jwt from 'jsonwebtoken'
import { PrismaClient } from '../../src/generated/prisma/client.js'

const secret = process.env.JWT_SECRET ?? ''
const issuer = process.env.JWT_ISSUER ?? 'http://localhost:3000'
const audience = process.env.JWT_AUDIENCE ?? 'blog-api'

const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: process.env.DATABASE_URL }) })
const app = express()

function auth(req: Request, res: Response, next: NextFunction) {
  const header = req.headers.authorization
  if (!header?.startsWith('Bearer ')) {
    res.status(401).json({ error: 'missing token' })
    return
  }
  try {
    res.locals.user = jwt.verify(header.slice(7), secret, { algorithms: ['HS256'], issuer, audience })
    next()
  } catch {
    res.status(401).json({ error: 'invalid token' })
  }
}

app.get('/posts/:id', auth, async (req: Request<{ id: string }>, res: Response) => {
  const post = await prisma.post.findUnique({
    where: { id: req.params.id },
    select: { id: true, title: true, content: true, createdAt: true, updatedAt: true, author: { select: { id: true, fullName: true } } }
  })
  if (!post) {
    res.status(404).json({ error: 'not found' })
    return
  }
  res.json({
    id: post.id,
    title: post.title,
    content: post.content,
    author: { id: post.author.id, full_name: post.author.fullName },
    created_at: post.createdAt,
    updated_at: post.updatedAt
  })
})

const port = Number(process.env.PORT ?? 3200)
app.listen(port, '127.0.0.1')
