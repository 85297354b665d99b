// Turns a failed first connection to PostgreSQL into one sentence that names
// the variable to fix and what is wrong with it: "connect ECONNREFUSED" or
// "getaddrinfo ENOTFOUND base" says neither.

interface ErrorFields {
  code?: unknown
  message?: unknown
  cause?: unknown
}

/** The first error code in the error or its causes (Node's ECONNREFUSED, PostgreSQL's SQLSTATE). */
function codeOf(error: unknown): string | undefined {
  let current: unknown = error
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const { code, cause } = current as ErrorFields
    if (typeof code === 'string') return code
    current = cause
  }
  return undefined
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/**
 * A sentence for an error met while connecting to `databaseUrl`, or
 * undefined when the error is not about reaching the server (a failed
 * migration, say). Never repeats the password.
 */
export function explainConnectionError(error: unknown, databaseUrl: string, variable = 'DATABASE_URL'): string | undefined {
  let url: URL
  try {
    url = new URL(databaseUrl)
  } catch {
    return undefined
  }
  const host = url.hostname
  const address = `${host}:${url.port || '5432'}`
  const user = decodeURIComponent(url.username) || 'the default user'
  const database = decodeURIComponent(url.pathname.slice(1)) || user
  const code = codeOf(error)
  const message = messageOf(error)
  switch (code) {
    case 'ECONNREFUSED':
      return `${variable}: nothing accepts connections at ${address} (connection refused). Is PostgreSQL running there, and are the host and port in ${variable} right?`
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `${variable}: the host "${host}" cannot be found (DNS lookup failed). Check the host name in ${variable}.`
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `${variable}: ${address} cannot be reached (${code}). Check the host and port in ${variable}, and any firewall in between.`
    case '28P01':
      return `${variable}: PostgreSQL refused the password of user "${user}". Check the user and password (a password with characters such as @ : / # % can go in DATABASE_PASSWORD as it is).`
    case '28000':
      return `${variable}: PostgreSQL does not let user "${user}" connect to "${database}" from here: ${message}`
    case '3D000':
      return `${variable}: the database "${database}" does not exist on ${address}. Create it (createdb ${database}), or name an existing one.`
    case 'ECONNRESET':
      return `${variable}: ${address} closed the connection at once. Is it a PostgreSQL server, and does it need TLS (?sslmode=require)?`
    default:
      if (/timeout/i.test(message)) {
        return `${variable}: no answer from ${address} in time. Check the host and port in ${variable}, and any firewall in between.`
      }
      return undefined
  }
}
