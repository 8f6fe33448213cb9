import { isIP } from 'node:net'
import { parsePort } from './address.js'
import { normalizeCidr } from './cidr.js'
import { normalizeHostname } from './hostname.js'
import { describe } from './issues.js'

/**
 * Validates one `outbound` entry of an agent's relay policy and returns it normalised (lowercase
 * names, canonical IP literals). Forms: "smtp.example.com:587", "*.example.com:587",
 * "203.0.113.5:25", "10.0.0.0/8:25", "[::1]:25", "[2001:db8::/32]:443". The port is required.
 * Entries stay strings; the relay's outbound policy parses them again when it decides.
 */
export function normalizeOutboundEntry(value: unknown): string {
  if (typeof value !== 'string') throw new Error(`expected "host:port", got ${describe(value)}`)
  let hostPart: string
  let portText: string
  if (value.startsWith('[')) {
    const end = value.indexOf(']')
    if (end < 0 || value[end + 1] !== ':') throw new Error(`expected "[ipv6]:port", got ${describe(value)}`)
    hostPart = value.slice(1, end)
    portText = value.slice(end + 2)
    if (!hostPart.includes(':')) throw new Error(`brackets are only for IPv6 addresses: ${describe(value)}`)
  } else {
    const colon = value.lastIndexOf(':')
    if (colon < 0) throw new Error(`missing port in ${describe(value)} (expected "host:port")`)
    hostPart = value.slice(0, colon)
    portText = value.slice(colon + 1)
    if (hostPart.includes(':')) throw new Error(`IPv6 addresses need brackets: "[${hostPart}]:${portText}"`)
  }
  const port = parsePort(portText)
  return `${normalizeHost(hostPart, value)}:${port}`
}

function normalizeHost(host: string, entry: string): string {
  const v6 = host.includes(':')
  if (host.includes('/')) {
    const cidr = normalizeCidr(host)
    return v6 ? `[${cidr}]` : cidr
  }
  if (isIP(host) !== 0) return v6 ? `[${host.toLowerCase()}]` : host
  if (v6) throw new Error(`"${host}" is not an IPv6 address`)
  if (host.startsWith('*.')) {
    const rest = normalizeHostname(host.slice(2))
    if (rest === null || isIP(rest) !== 0) throw new Error(`invalid wildcard ${JSON.stringify(host)} in ${JSON.stringify(entry)}`)
    return `*.${rest}`
  }
  const name = normalizeHostname(host)
  if (name === null) throw new Error(`invalid destination host ${JSON.stringify(host)} (names, "*.name", IPs or CIDRs only)`)
  return name
}
