// A real SMTP server for the tests (the `smtp-server` package, on a loopback
// port of its own): it receives what the service sends over SMTP and keeps
// each message, parsed. It can also misbehave as mail servers do: refuse the
// next messages with a reply code of the test's choice (4xx: try again later,
// 5xx: never), or hold a message's final reply until the test lets it go.
import { once } from 'node:events'
import { type ParsedMail, simpleParser } from 'mailparser'
import { SMTPServer } from 'smtp-server'
import { expect } from 'vitest'

export interface Received {
  to: string
  subject: string
  text: string
  html: string
  raw: Buffer
  parsed: ParsedMail
}

/** A refusal as the SMTP server answers it. */
function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code })
}

export interface Mailbox {
  /** MAIL_URL for this server. */
  readonly url: string
  readonly port: number
  /** Every message received, oldest first. */
  readonly messages: Received[]
  /** Delivery attempts seen (refused ones too). */
  readonly attempts: number
  /** Refuses the next `count` messages with `code` (451: try later; 550: never). */
  refuseNext(count: number, code: number): void
  /** Holds the final reply to every message until `release()`. */
  hold(): void
  release(): void
  /** The messages to `address` once there are `count` of them (polling; fails after `timeout` ms). */
  waitFor(address: string, count?: number, timeout?: number): Promise<Received[]>
  /** The messages sent to `address` so far. */
  to(address: string): Received[]
  close(): Promise<void>
}

/** A loopback port that nothing listens on (for a mail server that is down). */

/** Starts a mailbox on `port` (default: a free one). */
export async function startMailbox(port = 0): Promise<Mailbox> {
  const messages: Received[] = []
  let attempts = 0
  let refusals: { count: number; code: number } = { count: 0, code: 451 }
  let gate: Promise<void> | undefined
  let open: (() => void) | undefined

  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    // Closing the server does not wait for held connections.
    closeTimeout: 100,
    onData(stream, session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('end', () => {
        attempts++
        if (refusals.count > 0) {
          refusals = { ...refusals, count: refusals.count - 1 }
          callback(smtpError(refusals.code, refusals.code >= 500 ? 'Mailbox unavailable' : 'Try again later'))
          return
        }
        void (async () => {
          if (gate) await gate
          const raw = Buffer.concat(chunks)
          const parsed = await simpleParser(raw)
          messages.push({
            to: session.envelope.rcptTo.map((recipient) => recipient.address).join(','),
            subject: parsed.subject ?? '',
            text: parsed.text ?? '',
            html: typeof parsed.html === 'string' ? parsed.html : '',
            raw,
            parsed
          })
          callback()
        })()
      })
    }
  })
  server.listen(port, '127.0.0.1')
  await once(server.server, 'listening')
  const address = server.server.address()
  if (address === null || typeof address === 'string') throw new Error('the mailbox has no port')

  const to = (recipient: string) => messages.filter((message) => message.to === recipient.toLowerCase())
  return {
    url: `smtp://127.0.0.1:${address.port}`,
    port: address.port,
    messages,
    get attempts() {
      return attempts
    },
    refuseNext(count, code) {
      refusals = { count, code }
    },
    hold() {
      gate = new Promise((resolve) => {
        open = resolve
      })
    },
    release() {
      open?.()
      gate = undefined
    },
    to,
    async waitFor(recipient, count = 1, timeout = 15_000) {
      await expect.poll(() => to(recipient).length, { timeout, interval: 50 }).toBeGreaterThanOrEqual(count)
      return to(recipient)
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

/** The link in an email's text part. */
export function linkIn(message: Received): URL {
  const match = /https?:\/\/\S+/.exec(message.text)
  if (!match) throw new Error(`no link in "${message.subject}"`)
  return new URL(match[0])
}

/** The token of the link in an email. */
export function tokenIn(message: Received): string {
  const token = linkIn(message).searchParams.get('token')
  if (!token) throw new Error(`no token in the link of "${message.subject}"`)
  return token
}
