// The bucket a client's address is counted in by the rate limits and the
// login lockout. An IPv4 address counts as itself, also when it arrives
// mapped into IPv6 (`::ffff:198.51.100.7`, as a dual-stack socket reports it).
// An IPv6 address counts by its /64: that is one subscriber's allocation, in
// which its holder can pick a new address for every request.
import { isIPv6 } from 'node:net'
import { Address6 } from 'ip-address'

export function addressBucket(ip: string): string {
  if (!isIPv6(ip)) return ip.toLowerCase()
  const address = new Address6(ip)
  if (address.isMapped4()) return address.to4().correctForm()
  return `${new Address6(`${address.correctForm()}/64`).startAddress().correctForm()}/64`
}
