import { cidrContains, parseCidr, parseIp, type Cidr } from './ip.js'

/** Parses allow_ips entries ("203.0.113.0/24", "::1", "2001:db8::/32"); bad entries are reported, never ignored. */
export function parseCidrList(entries: readonly string[]): { cidrs: Cidr[]; invalid: string[] } {
  const cidrs: Cidr[] = []
  const invalid: string[] = []
  for (const entry of entries) {
    const cidr = parseCidr(entry.trim())
    if (cidr === null) invalid.push(entry)
    else cidrs.push(cidr)
  }
  return { cidrs, invalid }
}

/**
 * True when the peer address (as a socket reports it, maybe "::ffff:a.b.c.d") is inside one of
 * the CIDRs. An unparseable address is never allowed. An empty list allows nobody: callers
 * decide what "no allow_ips configured" means.
 */
export function ipAllowed(address: string | undefined, cidrs: readonly Cidr[]): boolean {
  if (address === undefined) return false
  const ip = parseIp(address)
  if (ip === null) return false
  return cidrs.some((cidr) => cidrContains(cidr, ip))
}
