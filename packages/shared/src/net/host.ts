import { parseCanonicalIp, type IpAddress } from './ip.js'

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

const MAX_NAME_CHARS = 253
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/
// inet_aton reads a final label made of digits (decimal/octal) or 0x-hex as part of an IPv4 address.
const NUMERIC_LABEL = /^(?:0x[0-9a-f]*|[0-9]+)$/

export function classifyHost(text: string): HostKind {
  if (text.length === 0) return { kind: 'invalid', reason: 'empty host' }
  const bracketed = text.startsWith('[') && text.endsWith(']')
  const unbracketed = bracketed ? text.slice(1, -1) : text
  const ip = parseCanonicalIp(unbracketed)
  if (ip !== null && (!bracketed || ip.kind() === 'ipv6')) return { kind: 'ip', address: ip }
  if (bracketed || unbracketed.includes(':')) return { kind: 'invalid', reason: 'not a canonical IPv6 literal' }
  const name = normalizeHostname(text)
  if (name === null) return { kind: 'invalid', reason: 'not a valid hostname or canonical IP literal' }
  return { kind: 'name', name }
}

/**
 * Lowercases, strips one trailing dot and validates a DNS name. Returns null for invalid names and
 * for names whose last label is numeric (those are IPv4 in disguise, or not routable names).
 */
export function normalizeHostname(text: string): string | null {
  let name = text.toLowerCase()
  if (name.endsWith('.')) name = name.slice(0, -1)
  if (name.length === 0 || name.length > MAX_NAME_CHARS) return null
  const labels = name.split('.')
  for (const label of labels) {
    if (!LABEL.test(label)) return null
  }
  const last = labels[labels.length - 1] ?? ''
  if (NUMERIC_LABEL.test(last)) return null
  return name
}
