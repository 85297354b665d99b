// An AbortSignal that fires when the client closes the connection before its
// answer is sent: a password hash still waiting for its turn is then not
// computed (a flood of logins whose clients gave up would otherwise delay
// every later one). Whatever was counted for the request (a login attempt
// towards the lockout) stays counted.
import type { FastifyReply } from 'fastify'
import { clientClosedRequest } from './errors.js'

export function whileClientWaits(reply: FastifyReply): AbortSignal {
  const controller = new AbortController()
  const gone = () => controller.abort(clientClosedRequest())
  // Gone already (while the body was read or the account looked up), or later.
  if (reply.raw.socket?.destroyed === true) gone()
  else {
    reply.raw.once('close', () => {
      if (!reply.raw.writableEnded) gone()
    })
  }
  return controller.signal
}
