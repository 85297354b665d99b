// A preValidation hook that trims string fields of a body, so that length
// limits and "not blank" rules apply to what is stored.
import type { FastifyRequest } from 'fastify'

export function trimFields(fields: readonly string[]) {
  return async function trim(request: FastifyRequest) {
    const body = request.body
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return
    const record = body as Record<string, unknown>
    for (const field of fields) {
      const value = record[field]
      if (typeof value === 'string') record[field] = value.trim()
    }
  }
}
