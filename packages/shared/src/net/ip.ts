import { isIPv6 } from 'node:net'
import ipaddr from 'ipaddr.js'

/**
 * IP parsing for policy decisions. Nothing here compares address strings: every input is parsed
 * with ipaddr.js, IPv4-mapped IPv6 (::ffff:a.b.c.d) is folded to IPv4, and only canonical literals
 * count as literals (inet_aton forms such as 2130706433, 0x7f000001, 0177.0.0.1 or 127.1 do not).
 */
export type IpAddress = ipaddr.IPv4 | ipaddr.IPv6

export interface Cidr {
  /** Network address (host bits cleared). */
  readonly network: IpAddress
  readonly prefixLength: number
}

/**
 * Parses a canonical IP literal: dotted-quad IPv4 without leading zeros, or IPv6 without a zone id.
 * IPv4-mapped IPv6 is returned as IPv4. Returns null for anything else (names, obfuscated forms).
 */
export function parseIp(text: string): IpAddress | null {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text)
  if (!text.includes('%') && isIPv6(text)) return foldMapped(ipaddr.IPv6.parse(text))
  return null
}

/** Like parseIp, but an IPv4-mapped IPv6 literal is refused instead of folded (for user-typed hosts). */
export function parseCanonicalIp(text: string): IpAddress | null {
  const ip = parseIp(text)
  if (ip === null) return null
  if (ip.kind() === 'ipv4' && !ipaddr.IPv4.isValidFourPartDecimal(text)) return null
  return ip
}

/** Socket peers seen recently -> canonical text; cleared when full, so it stays bounded. */
const peerMemo = new Map<string, string | null>()
const PEER_MEMO_MAX = 4096

/**
 * normalizeIp for a socket's remoteAddress. A server sees the same peers over and over (every
 * request of a keep-alive connection), and parsing with ipaddr.js on each one cost ~2% of the
 * relay's CPU per request.
 */
export function normalizePeerIp(text: string): string | null {
  let canonical = peerMemo.get(text)
  if (canonical === undefined) {
    canonical = normalizeIp(text)
    if (peerMemo.size >= PEER_MEMO_MAX) peerMemo.clear()
    peerMemo.set(text, canonical)
  }
  return canonical
}

/** Canonical text of an address ("127.0.0.1", "2001:db8::1"); mapped IPv6 becomes IPv4. Null if not an IP. */
export function normalizeIp(text: string): string | null {
  const ip = parseIp(text)
  return ip === null ? null : ip.toString()
}

/**
 * Parses "a.b.c.d/n", "v6/n" or a single canonical IP (as /32 or /128). An IPv4-mapped IPv6 CIDR
 * of prefix >= 96 becomes the equivalent IPv4 CIDR so it matches folded addresses.
 */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/')
  if (slash === -1) {
    const ip = parseIp(text)
    return ip === null ? null : { network: ip, prefixLength: ip.kind() === 'ipv4' ? 32 : 128 }
  }
  const addrText = text.slice(0, slash)
  const bitsText = text.slice(slash + 1)
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bitsText)) return null
  let prefixLength = Number(bitsText)
  let addr: IpAddress
  if (ipaddr.IPv4.isValidFourPartDecimal(addrText)) {
    if (prefixLength > 32) return null
    addr = ipaddr.IPv4.parse(addrText)
  } else if (!addrText.includes('%') && isIPv6(addrText)) {
    if (prefixLength > 128) return null
    const v6 = ipaddr.IPv6.parse(addrText)
    if (v6.isIPv4MappedAddress() && prefixLength >= 96) {
      addr = v6.toIPv4Address()
      prefixLength -= 96
    } else {
      addr = v6
    }
  } else {
    return null
  }
  return { network: networkOf(addr, prefixLength), prefixLength }
}

/** True when the address lies inside the CIDR (different families never match). */
export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  if (cidr.network.kind() !== ip.kind()) return false
  return ip.match(cidr.network, cidr.prefixLength)
}

/** ipaddr.js range name of an address ("unicast", "loopback", "private", ...), plus our own additions. */
export function ipRange(ip: IpAddress): string {
  // ::/96 (IPv4-compatible, deprecated) is "unicast" to ipaddr.js; treat it as special, fail closed.
  const range = ip.range()
  if (range === 'unicast' && ip.kind() === 'ipv6' && ip.match(IPV4_COMPATIBLE.network, IPV4_COMPATIBLE.prefixLength)) return 'ipv4Compatible'
  return range
}

/**
 * True for every address that is not plain global unicast: loopback, private, link-local,
 * unique-local, unspecified, carrier-grade NAT, broadcast, multicast, reserved, and the IPv6
 * ranges that embed IPv4 (NAT64, 6to4, Teredo), which could reach internal IPv4 hosts.
 */
export function isSpecialAddress(ip: IpAddress | string): boolean {
  const parsed = typeof ip === 'string' ? parseIp(ip) : ip
  if (parsed === null) return true
  return ipRange(parsed) !== 'unicast'
}

/** Loopback (127/8, ::1) or any other non-global range. Unparseable input counts as special. */
export function isLoopbackOrPrivate(addr: string): boolean {
  return isSpecialAddress(addr)
}

/** True for 127.0.0.0/8 and ::1 (and their mapped forms); used to warn on non-loopback binds. */
export function isLoopbackAddress(addr: string): boolean {
  if (addr.toLowerCase() === 'localhost') return true
  const ip = parseIp(addr)
  return ip !== null && ip.range() === 'loopback'
}

const IPV4_COMPATIBLE: Cidr = { network: ipaddr.IPv6.parse('::'), prefixLength: 96 }

function foldMapped(ip: ipaddr.IPv6): IpAddress {
  return ip.isIPv4MappedAddress() ? ip.toIPv4Address() : ip
}

function networkOf(addr: IpAddress, prefixLength: number): IpAddress {
  const bytes = addr.toByteArray()
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefixLength - i * 8))
    bytes[i] = (bytes[i] ?? 0) & ((0xff << (8 - keep)) & 0xff)
  }
  return ipaddr.fromByteArray(bytes)
}
