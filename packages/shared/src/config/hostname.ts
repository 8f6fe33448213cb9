import { isIPv4 } from 'node:net'

/**
 * Hostnames as the relay routes them: one normalised form (lowercase, no trailing dot) used for
 * policy, routing and the Host sent to the origin (SECURITY rule 1, "one parse, one truth").
 */

const MAX_NAME_CHARS = 253
const MAX_LABEL_CHARS = 63
// Checked before lowercasing: some non-ASCII letters lowercase to ASCII (U+212A KELVIN SIGN -> "k").
const ASCII_NAME = /^[A-Za-z0-9.-]+$/
const LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/
// A numeric-looking last label is something getaddrinfo would read as an address ("127.1", "0x7f000001").
const NUMERIC_LABEL = /^(?:[0-9]+|0x[0-9a-f]*)$/

/**
 * Lowercases, strips one trailing dot and checks LDH rules: labels of [a-z0-9-] that neither start
 * nor end with "-", at most 63 characters each, at most 253 in total. Ports, spaces, control
 * characters, empty labels and wildcards are rejected. A name whose last label is numeric must be
 * a canonical dotted-quad IPv4 address. Returns null when invalid.
 */
export function normalizeHostname(input: string): string | null {
  if (typeof input !== 'string' || !ASCII_NAME.test(input)) return null
  let name = input.toLowerCase()
  if (name.endsWith('.')) name = name.slice(0, -1)
  if (name.length === 0 || name.length > MAX_NAME_CHARS) return null
  const labels = name.split('.')
  for (const label of labels) {
    if (label.length > MAX_LABEL_CHARS || !LABEL.test(label)) return null
  }
  const last = labels[labels.length - 1] ?? ''
  if (NUMERIC_LABEL.test(last) && !isIPv4(name)) return null
  return name
}

/**
 * A `hosts` pattern: an exact hostname or "*." followed by a hostname. Returns the normalised
 * pattern, or null when invalid ("*", "*.", "a.*.b", "*foo.com" are all invalid).
 */
export function normalizeHostPattern(input: string): string | null {
  if (typeof input !== 'string') return null
  if (input.startsWith('*.')) {
    const rest = normalizeHostname(input.slice(2))
    return rest === null || isIPv4(rest) ? null : `*.${rest}`
  }
  return normalizeHostname(input)
}

/**
 * Case-insensitive match of a hostname against a `hosts` pattern. "*.a.com" matches exactly one
 * extra label: "x.a.com" yes, "y.x.a.com" no, "a.com" no. Without "*." the match is exact.
 * Invalid hosts or patterns never match.
 */
export function hostMatchesPattern(host: string, pattern: string): boolean {
  const name = normalizeHostname(host)
  const normalized = normalizeHostPattern(pattern)
  if (name === null || normalized === null) return false
  if (!normalized.startsWith('*.')) return name === normalized
  const suffix = normalized.slice(1) // ".a.com"
  if (!name.endsWith(suffix)) return false
  const first = name.slice(0, name.length - suffix.length)
  return first.length > 0 && !first.includes('.')
}

/** True for names and addresses that only reach this machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase()
  if (h === 'localhost' || h.endsWith('.localhost') || h === '::1') return true
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h
  return isIPv4(v4) && v4.startsWith('127.')
}
