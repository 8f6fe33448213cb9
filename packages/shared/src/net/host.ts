import { isIPv4 } from 'node:net'
import { normalizeHostname } from '../config/hostname.js'
import { parseCanonicalIp, type IpAddress } from './ip.js'

/** The one hostname normaliser (config/hostname.ts): dial targets, outbound rules and published names agree (`_` and non-ASCII refused everywhere). */
export { normalizeHostname }

/**
 * What a destination host string is, decided once so policy and dialling agree:
 * - `ip`: a canonical literal (dotted-quad, or IPv6 with or without brackets, no zone id);
 * - `name`: a DNS name, lowercased with the trailing dot removed;
 * - `invalid`: anything else, including forms getaddrinfo would quietly read as an IP
 *   (2130706433, 0x7f000001, 0177.0.0.1, 127.1, ::ffff:127.0.0.1, fe80::1%lo).
 */
export type HostKind =
  | { kind: 'ip'; address: IpAddress }
  | { kind: 'name'; name: string }
  | { kind: 'invalid'; reason: string }

export function classifyHost(text: string): HostKind {
  if (text.length === 0) return { kind: 'invalid', reason: 'empty host' }
  const bracketed = text.startsWith('[') && text.endsWith(']')
  const unbracketed = bracketed ? text.slice(1, -1) : text
  const ip = parseCanonicalIp(unbracketed)
  if (ip !== null && (!bracketed || ip.kind() === 'ipv6')) return { kind: 'ip', address: ip }
  if (bracketed || unbracketed.includes(':')) return { kind: 'invalid', reason: 'not a canonical IPv6 literal' }
  const name = normalizeHostname(text)
  // A name that is an IPv4 address after normalising ("127.0.0.1.") is not a canonical literal.
  if (name === null || isIPv4(name)) return { kind: 'invalid', reason: 'not a valid hostname or canonical IP literal' }
  return { kind: 'name', name }
}
