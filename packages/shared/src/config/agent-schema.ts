import { z } from 'zod'
import { parseLocalAddress, type Address } from './address.js'
import { convert, requireString, strict } from './fields.js'
import { parseProxyUrl } from './proxy-url.js'
import { checkSecretSyntax } from './secret.js'
import { nullablePath, type SchemaContext } from './value-fields.js'

/**
 * agent.yaml: the parsed types, the defaults and the top-level schema. Tunnel entries have their
 * own schemas in tunnel-schema.ts. docs/configuration.md documents every key listed here.
 */

export interface AccessConfig {
  /** Share links (`porchlight link create`) let visitors in. */
  links: boolean
  basic: { user: string; password_hash: string } | null
  /** Visitor networks allowed at all, as "address/bits"; empty = any address. */
  allow_ips: string[]
  /**
   * Visitors may present a visitor certificate from the relay's CA (HTTPS only): true for any,
   * or the names of the ones that open this site. Agent certificates never do.
   */
  client_certs: boolean | string[]
}

export type AgentTunnel =
  | { kind: 'http'; id: string; http: string; to: string; host_header: string | null; access: AccessConfig | null }
  | { kind: 'tcp'; id: string; tcp: number; to: Address; allow_ips: string[]; proxy_protocol: 'v1' | 'v2' | null }
  | { kind: 'forward'; id: string; forward: Address; to: { host: string; port: number } }

export interface AgentConfig {
  /** ws:// or wss:// URL of the relay's agents listener, without a trailing slash. */
  relay: string
  /** The resolved token (the literal, or what env:/file: pointed at). */
  token: string
  /** Client certificate bundle path; read when the agent connects, not at load time. */
  cert: string | null
  /** Extra CA file to trust for the relay's certificate; read when the agent connects. */
  ca: string | null
  tunnels: AgentTunnel[]
  /** Local status API; null when disabled. */
  inspect: Address | null
  /**
   * HTTP proxy for the link to the relay (normalised URL, credentials included); false: never a
   * proxy, whatever the environment says; null or absent: HTTPS_PROXY / HTTP_PROXY and NO_PROXY.
   */
  proxy?: string | false | null
  /**
   * What the inspector keeps of recent HTTP requests, in memory only: at most `requests` entries
   * and `bytes` of headers and body prefixes together (0 requests: record nothing). Absent in a
   * hand-built config means the defaults.
   */
  inspect_capture?: InspectCapture
}

export interface InspectCapture {
  requests: number
  bytes: number
}

export const AGENT_DEFAULTS = {
  inspect: '127.0.0.1:4040',
  inspect_capture: { requests: 500, bytes: 32 * 1024 * 1024 },
  /** Tunnels per agent; the publish message carries at most this many. */
  max_tunnels: 256,
} as const

function relayUrl(value: unknown): string {
  const text = requireString(value, 'a ws:// or wss:// URL')
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new Error(`${JSON.stringify(text)} is not a URL (expected e.g. wss://tunnel.example.com:7443)`)
  }
  const scheme = ({ 'ws:': 'ws:', 'wss:': 'wss:', 'http:': 'ws:', 'https:': 'wss:' } as Record<string, string>)[url.protocol]
  if (scheme === undefined) throw new Error(`expected a ws:// or wss:// URL, got ${JSON.stringify(text)}`)
  if (url.username !== '' || url.password !== '') throw new Error('credentials do not belong in the relay URL; use token')
  if (url.search !== '' || url.hash !== '') throw new Error(`the relay URL must not have a query or fragment: ${JSON.stringify(text)}`)
  if (url.hostname === '') throw new Error(`missing host in ${JSON.stringify(text)}`)
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, '')
  return `${scheme}//${url.host}${path}`
}

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, kib: 1024, kb: 1000, mib: 1024 ** 2, mb: 1000 ** 2, gib: 1024 ** 3, gb: 1000 ** 3 }
const MAX_CAPTURE_BYTES = 4 * 1024 ** 3

/** A byte count: an integer, or a string such as "32MiB", "512 KiB", "1GB". */
export function parseByteSize(value: unknown): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return checkCaptureBytes(value)
  const text = typeof value === 'string' ? value.trim() : ''
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text)
  const unit = match === null ? undefined : BYTE_UNITS[match[2]!.toLowerCase()]
  if (match === null || unit === undefined) throw new Error(`expected a size such as 32MiB or a number of bytes, got ${JSON.stringify(value)}`)
  return checkCaptureBytes(Math.floor(Number(match[1]) * unit))
}

function checkCaptureBytes(bytes: number): number {
  if (bytes > MAX_CAPTURE_BYTES) throw new Error('at most 4GiB')
  return bytes
}

export function agentSections(ctx: SchemaContext) {
  return {
    relay: convert(relayUrl),
    token: convert(checkSecretSyntax),
    cert: nullablePath(ctx),
    ca: nullablePath(ctx),
    // Entries are validated one by one in tunnel-schema.ts, each under its own tunnels[i] path.
    tunnels: z.array(z.unknown()).max(AGENT_DEFAULTS.max_tunnels).default([]),
    // `false` (or null) turns the inspector off; a bare port means 127.0.0.1.
    inspect: convert((v) => (v === false || v === null ? null : parseLocalAddress(v))).prefault(AGENT_DEFAULTS.inspect),
    // `false` ignores HTTPS_PROXY/HTTP_PROXY; absent (null) uses them.
    proxy: convert((v) => (v === false || v === null ? v : parseProxyUrl(requireString(v, 'an http://host:port URL or false')).href.replace(/\/$/, ''))).prefault(null),
    inspect_capture: strict({
      requests: z.number().int().min(0).max(100_000).default(AGENT_DEFAULTS.inspect_capture.requests),
      bytes: convert(parseByteSize).prefault(AGENT_DEFAULTS.inspect_capture.bytes),
    }).prefault({}),
  }
}

export type AgentSections = ReturnType<typeof agentSections>
