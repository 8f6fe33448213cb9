/**
 * Header hygiene between the relay and the local origin (SECURITY.md rule 2: re-frame, never
 * byte-pipe). Pure functions over [name, value] lists so order and duplicates survive.
 */
export type HeaderList = Array<[string, string]>

/** Hop-by-hop headers (RFC 9110 §7.6.1 plus the usual proxy leftovers); never forwarded. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate',
])

/** Names listed in every Connection header ("Connection: close, X-Foo" makes X-Foo hop-by-hop). */
export function connectionTokens(headers: ReadonlyArray<readonly [string, string]>): Set<string> {
  const tokens = new Set<string>()
  for (const [name, value] of headers) {
    if (name.toLowerCase() !== 'connection') continue
    for (const token of value.split(',')) {
      const t = token.trim().toLowerCase()
      if (t !== '') tokens.add(t)
    }
  }
  return tokens
}

export interface RequestHeaderOptions {
  /** The Host the origin expects: `host_header` or the origin's own host:port. */
  host: string
  /** Keep Upgrade and send `Connection: Upgrade` (WebSocket and friends). */
  upgrade: boolean
}

/**
 * Headers for the request to the origin: hop-by-hop and Connection-named headers dropped, Host
 * replaced, `Expect` dropped (the relay already streams the body, so nobody waits for a 100).
 * The relay-set X-Forwarded-* headers pass through untouched, even when Connection names them.
 */
export function originRequestHeaders(headers: ReadonlyArray<readonly [string, string]>, options: RequestHeaderOptions): HeaderList {
  const named = connectionTokens(headers)
  const out: HeaderList = [['host', options.host]]
  let upgradeValue: string | null = null
  for (const [name, value] of headers) {
    const lower = name.toLowerCase()
    if (lower === 'upgrade' && options.upgrade) {
      upgradeValue ??= value
      continue
    }
    if (lower === 'host' || lower === 'expect' || HOP_BY_HOP.has(lower)) continue
    if (named.has(lower) && !lower.startsWith('x-forwarded-')) continue
    out.push([name, value])
  }
  if (options.upgrade && upgradeValue !== null) {
    out.push(['connection', 'Upgrade'], ['upgrade', upgradeValue])
  }
  return out
}

/**
 * Headers of the origin's response as sent back to the relay: hop-by-hop dropped (the relay frames
 * the body itself), except Upgrade/Connection on a 101 which the relay needs to switch protocols.
 */
export function relayResponseHeaders(rawHeaders: ReadonlyArray<string>, status: number): HeaderList {
  const pairs: HeaderList = []
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) pairs.push([rawHeaders[i]!, rawHeaders[i + 1]!])
  const switching = status === 101
  const named = switching ? new Set<string>() : connectionTokens(pairs)
  return pairs.filter(([name]) => {
    const lower = name.toLowerCase()
    if (switching && (lower === 'upgrade' || lower === 'connection')) return true
    return !HOP_BY_HOP.has(lower) && !named.has(lower)
  })
}

/** The single value of a header, or null when absent; undefined when it appears more than once. */
export function singleHeader(headers: ReadonlyArray<readonly [string, string]>, name: string): string | null | undefined {
  let found: string | null = null
  for (const [n, v] of headers) {
    if (n.toLowerCase() !== name) continue
    if (found !== null) return undefined
    found = v
  }
  return found
}

/** Flattens a list into Node's raw header array form (`http.request({ headers: [...] })`). */
export function flattenHeaders(headers: HeaderList): string[] {
  const flat: string[] = []
  for (const [name, value] of headers) flat.push(name, value)
  return flat
}
