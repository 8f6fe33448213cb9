import type { IncomingMessage } from 'node:http'
import { normalizeHostname } from '@porchlight/shared/config'

/**
 * One parse, one truth: the routing host comes from a single normalised Host value, and
 * requests that could be read two ways are refused before anything reaches an agent.
 */
export type RequestCheck = { ok: true; host: string } | { ok: false; reason: string; status?: number }

/**
 * More header lines than this get 431. Node's own cap (maxHeadersCount) silently drops the excess
 * and passes the rest on, so the server's cap is off and this check decides; maxHeaderSize
 * (16 KiB) still bounds what is parsed.
 */
export const MAX_REQUEST_HEADERS = 200

const SINGLETON_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'authorization'])

export function checkRequest(req: IncomingMessage, listenerPorts: ReadonlySet<number>): RequestCheck {
  const seen = new Set<string>()
  const raw = req.rawHeaders
  if (raw.length > 2 * MAX_REQUEST_HEADERS) return { ok: false, reason: `more than ${MAX_REQUEST_HEADERS} header lines`, status: 431 }
  let hostValue: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase()
    if (SINGLETON_HEADERS.has(name)) {
      if (seen.has(name)) return { ok: false, reason: `duplicate ${name} header` }
      seen.add(name)
    }
    if (name === 'host') hostValue = raw[i + 1]
  }
  if (seen.has('content-length') && seen.has('transfer-encoding')) {
    return { ok: false, reason: 'both content-length and transfer-encoding' }
  }
  const te = req.headers['transfer-encoding']
  if (te !== undefined && te.trim().toLowerCase() !== 'chunked') return { ok: false, reason: 'unsupported transfer-encoding' }
  if (req.method === 'CONNECT') return { ok: false, reason: 'CONNECT is not supported' }
  if (hostValue === undefined || hostValue === '') return { ok: false, reason: 'missing host header' }
  const host = parseHostHeader(hostValue, listenerPorts)
  if (host === null) return { ok: false, reason: 'invalid host header' }
  const url = req.url ?? ''
  if (!url.startsWith('/')) {
    // Absolute form must name the same host; anything else (authority form, '*') is refused.
    if (url === '*' && req.method === 'OPTIONS') return { ok: true, host }
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      return { ok: false, reason: 'invalid request target' }
    }
    // Only http(s) targets have an origin form: `foo://a.test` has an empty path (and `mailto:`
    // none at all), which would reach the agent as a request line it cannot send on.
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return { ok: false, reason: 'request target is not http or https' }
    if (normalizeHostname(parsed.hostname) !== host) return { ok: false, reason: 'request target does not match host' }
  }
  return { ok: true, host }
}

/** `A.TEST.` / `a.test:80` -> `a.test`; a port other than our listeners' -> null. */
export function parseHostHeader(value: string, listenerPorts: ReadonlySet<number>): string | null {
  const m = /^([^:[\]]+)(?::(\d{1,5}))?$/.exec(value)
  if (!m) return null
  if (m[2] !== undefined && !listenerPorts.has(Number(m[2]))) return null
  return normalizeHostname(m[1]!)
}

/** The path and query of the request, whatever form the target had. */
export function originForm(url: string): string {
  if (url.startsWith('/')) return url
  if (url === '*') return '*'
  try {
    const parsed = new URL(url)
    // Non-special schemes can have an empty or relative path; the origin always gets one from '/'.
    const path = parsed.pathname.startsWith('/') ? parsed.pathname : `/${parsed.pathname}`
    return `${path}${parsed.search}`
  } catch {
    return '/'
  }
}
