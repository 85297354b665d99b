// Recognises errors that mean "the database cannot be reached right now", as
// opposed to a query that failed. Those become 503 answers, not 500s.

// Prisma's codes for an unreachable, timed-out or overloaded server or pool.
const UNAVAILABLE_PRISMA_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2037'])
// Node's network errors and PostgreSQL's "cannot connect now" / shutdown SQLSTATEs.
const UNAVAILABLE_CAUSE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  '57P01',
  '57P02',
  '57P03',
  '53300'
])
const UNAVAILABLE_ADAPTER_KINDS = new Set([
  'DatabaseNotReachable',
  'ConnectionClosed',
  'SocketTimeout',
  'TooManyConnections',
  'TlsConnectionError'
])

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined
}

export function isDatabaseUnavailable(error: unknown): boolean {
  let current: unknown = error
  for (let depth = 0; depth < 5 && current; depth++) {
    const name = field(current, 'name')
    const code = field(current, 'code')
    const kind = field(current, 'kind')
    if (name === 'PrismaClientInitializationError') return true
    if (typeof code === 'string' && (UNAVAILABLE_PRISMA_CODES.has(code) || UNAVAILABLE_CAUSE_CODES.has(code))) {
      return true
    }
    if (typeof kind === 'string' && UNAVAILABLE_ADAPTER_KINDS.has(kind)) return true
    const message = field(current, 'message')
    if (typeof message === 'string' && /Connection terminated|connection timeout|timeout exceeded when trying to connect|Query read timeout/i.test(message)) {
      return true
    }
    // A raw query's failure (P2010) carries the driver's error in `meta.driverAdapterError`.
    current = field(current, 'cause') ?? field(current, 'driverAdapterError') ?? field(current, 'meta')
  }
  return false
}
