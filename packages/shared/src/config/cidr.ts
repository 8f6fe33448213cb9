import { isIP } from 'node:net'
import ipaddr from 'ipaddr.js'
import { describe } from './issues.js'

const BITS = /^[0-9]{1,3}$/

/**
 * An IP network for allow-lists and `trust_proxy`: "10.0.0.0/8", "2001:db8::/32", or a single
 * address ("203.0.113.7" -> "203.0.113.7/32"). Only canonical literals are accepted (never
 * "127.1" or "0x7f.0.0.1"); the result is "address/bits" with the address in ipaddr.js's form.
 */
export function normalizeCidr(value: unknown): string {
  if (typeof value !== 'string') throw new Error(`expected an IP address or CIDR, got ${describe(value)}`)
  const slash = value.indexOf('/')
  const addressText = slash < 0 ? value : value.slice(0, slash)
  const family = isIP(addressText)
  if (family === 0) throw new Error(`${JSON.stringify(value)} is not an IP address or CIDR`)
  const maxBits = family === 4 ? 32 : 128
  const bitsText = slash < 0 ? String(maxBits) : value.slice(slash + 1)
  if (!BITS.test(bitsText) || Number(bitsText) > maxBits) {
    throw new Error(`invalid prefix length in ${JSON.stringify(value)} (0-${maxBits})`)
  }
  const address = ipaddr.parse(addressText)
  return `${address.toString()}/${Number(bitsText)}`
}
