/**
 * Header hygiene between visitor, relay and origin. Hop-by-hop headers never cross the relay;
 * the relay alone sets X-Forwarded-*; the relay's own cookies never reach the origin and an
 * origin can never set them.
 */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate', 'http2-settings',
])
const VISITOR_FORGED = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded', 'x-real-ip'])

export const RELAY_COOKIE_NAMES = ['porchlight_access', '__Host-porchlight_access']

export interface ForwardedInfo {
  clientIp: string
  /** The TCP peer (a trusted proxy when trustedChain is set). */
  peerIp: string
  /** Existing chain to keep when the peer is a trusted proxy; null otherwise. */
  trustedChain: string | null
  proto: 'http' | 'https'
  host: string
}

/** Request headers for the origin, as [name, value] pairs in visitor order. */
export function requestHeadersForOrigin(rawHeaders: string[], forwarded: ForwardedInfo, opts: { upgrade: boolean; dropAuthorization: boolean; cookie: string | null | undefined }): Array<[string, string]> {
  const named = connectionTokens(rawHeaders, 2, (i) => rawHeaders[i]!, (i) => rawHeaders[i + 1]!)
  const out: Array<[string, string]> = []
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!
    const lower = name.toLowerCase()
    if (VISITOR_FORGED.has(lower)) continue
    if (lower === 'cookie') continue
    if (lower === 'authorization' && opts.dropAuthorization) continue
    if (HOP_BY_HOP.has(lower) || named.has(lower)) {
      if (opts.upgrade && lower === 'upgrade') out.push([name, rawHeaders[i + 1]!])
      continue
    }
    out.push([name, rawHeaders[i + 1]!])
  }
  if (opts.upgrade) out.push(['Connection', 'Upgrade'])
  if (opts.cookie) out.push(['Cookie', opts.cookie])
  const xff = forwarded.trustedChain ? `${forwarded.trustedChain}, ${forwarded.peerIp}` : forwarded.clientIp
  out.push(['X-Forwarded-For', xff], ['X-Forwarded-Proto', forwarded.proto], ['X-Forwarded-Host', forwarded.host])
  return out
}

/** Response headers for the visitor: hop-by-hop and relay cookies removed, flattened for writeHead. */
export function responseHeadersForVisitor(headers: Array<[string, string]>, opts: { upgrade: boolean }): string[] {
  // Read the pairs in place: no flattened copy of every header per response.
  const named = connectionTokens(headers, 1, (i) => headers[i]![0], (i) => headers[i]![1])
  const out: string[] = []
  for (const [name, value] of headers) {
    const lower = name.toLowerCase()
    if (opts.upgrade && (lower === 'upgrade' || lower === 'connection')) {
      out.push(name, value)
      continue
    }
    if (HOP_BY_HOP.has(lower) || named.has(lower)) continue
    if (lower === 'set-cookie' && setsRelayCookie(value)) continue
    out.push(name, value)
  }
  return out
}

function setsRelayCookie(value: string): boolean {
  const name = value.split('=', 1)[0]!.trim()
  return RELAY_COOKIE_NAMES.some((n) => n.toLowerCase() === name.toLowerCase())
}

/** Names listed in Connection headers; `step`/`nameAt`/`valueAt` read flat or paired lists alike. */
function connectionTokens(list: readonly unknown[], step: number, nameAt: (i: number) => string, valueAt: (i: number) => string): Set<string> {
  const named = new Set<string>()
  for (let i = 0; i < list.length; i += step) {
    if (nameAt(i).toLowerCase() !== 'connection') continue
    for (const token of valueAt(i).split(',')) {
      const t = token.trim().toLowerCase()
      // The relay's own headers are set after this filter, so listing them changes nothing.
      if (t) named.add(t)
    }
  }
  for (const mine of VISITOR_FORGED) named.delete(mine)
  return named
}
