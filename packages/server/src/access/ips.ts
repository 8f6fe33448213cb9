import { ipAllowed, normalizeIp, normalizePeerIp, parseCidrList, type Cidr } from '@porchlight/shared/net'

/**
 * Visitor addresses for access decisions. The address is the TCP peer (L4); X-Forwarded-For is
 * believed only when that peer is a configured `trust_proxy`, and then read right to left,
 * stopping at the first hop that is not itself a trusted proxy. `Forwarded` is never read.
 */
export { ipAllowed, parseCidrList, type Cidr }

export interface ClientAddress {
  /** The address access rules apply to: canonical text, IPv4-mapped IPv6 folded to IPv4. */
  clientIp: string
  /**
   * The X-Forwarded-For chain as received (entries trimmed, joined by ", ") when the peer is a
   * trusted proxy that sent one; null otherwise. A proxy appends the peer address to it.
   */
  trustedChain: string | null
}

/** Hops read from X-Forwarded-For at most; a longer header only has its rightmost entries read. */
export const MAX_FORWARDED_HOPS = 32

const parsedTrust = new WeakMap<readonly string[], Cidr[]>()

export function clientAddress(
  socketAddress: string | undefined,
  xffHeader: string | readonly string[] | undefined,
  trustProxy: readonly string[] | undefined,
): ClientAddress {
  const peer = normalizePeerIp(socketAddress ?? '') ?? (socketAddress ?? '')
  const trusted = trustedCidrs(trustProxy)
  if (trusted.length === 0 || !ipAllowed(peer, trusted) || xffHeader === undefined) return { clientIp: peer, trustedChain: null }
  const entries = (typeof xffHeader === 'string' ? xffHeader : xffHeader.join(','))
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '')
  if (entries.length === 0) return { clientIp: peer, trustedChain: null }

  let client = peer
  const lowest = Math.max(0, entries.length - MAX_FORWARDED_HOPS)
  for (let i = entries.length - 1; i >= lowest; i--) {
    const hop = hopAddress(entries[i] ?? '')
    // A malformed entry was written by the trusted hop to its right; go no further than that hop.
    if (hop === null) break
    client = hop
    if (!ipAllowed(hop, trusted)) break
  }
  return { clientIp: client, trustedChain: entries.join(', ') }
}

/** An XFF entry as an address; tolerates the "1.2.3.4:5678" and "[2001:db8::1]:443" forms some proxies write. */
function hopAddress(entry: string): string | null {
  const direct = normalizeIp(entry)
  if (direct !== null) return direct
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(entry)
  if (bracketed) return normalizeIp(bracketed[1] ?? '')
  const v4Port = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(entry)
  if (v4Port) return normalizeIp(v4Port[1] ?? '')
  return null
}

function trustedCidrs(list: readonly string[] | undefined): Cidr[] {
  if (!list || list.length === 0) return []
  let cidrs = parsedTrust.get(list)
  if (!cidrs) {
    // Config validation rejects bad entries; any that slip through simply trust nobody.
    cidrs = parseCidrList(list).cidrs
    parsedTrust.set(list, cidrs)
  }
  return cidrs
}
