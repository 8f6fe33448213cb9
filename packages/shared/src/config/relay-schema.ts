import { z } from 'zod'
import { parseAddress, type Address } from './address.js'
import { normalizeCidr } from './cidr.js'
import { convert, listOf, requireString, strict } from './fields.js'
import { checkExecutable, checkPemFile, hostField, nullablePath, pemFile, sha256Spec, type SchemaContext } from './value-fields.js'
import { isLoopbackHost, normalizeHostPattern } from './hostname.js'
import { resolveConfigPath } from './paths.js'
import { normalizeOutboundEntry } from './outbound.js'
import { parsePortRange, type PortRange } from './port-range.js'
import { clusterSection, type RelayCluster } from './cluster-schema.js'

/**
 * relay.yaml: the parsed type, the defaults (with units in their names) and the schema, key by
 * key. Keys are exactly what the user types, in the schema and in the parsed type, so an issue
 * path names the key the user wrote. docs/configuration.md documents every key listed here.
 */

export interface RelayAgentPolicy {
  /** Hex SHA-256 of the agent's token, lowercase. */
  token_sha256: string
  /** Also demand a client certificate issued to this agent name (needs `tls`). */
  require_cert: boolean
  /** Hostnames it may publish: exact names or "*.suffix" (one extra label). */
  hosts: string[]
  /** Relay ports it may listen on. */
  tcp_ports: PortRange[]
  /** Destinations it may reach through forwards, normalised strings (see outbound.ts). */
  outbound: string[]
}

/** How the ACME CA is to check that the relay controls a name (RFC 8555 section 8, RFC 8737). */
export type AcmeChallenge = 'http-01' | 'tls-alpn-01' | 'dns-01'

/** `acme:`: automatic certificates for the visitors' HTTPS listener. */
export interface RelayAcme {
  /** The CA's ACME directory URL: https://, or http(s) on a loopback address (a test CA). */
  directory: string
  email: string
  /** Names to hold certificates for even when no agent publishes them; "*." names use dns-01. */
  names: string[]
  /** The challenge for exact names; `auto`: http-01 when listen.public is reachable from other machines, else tls-alpn-01. */
  challenge: AcmeChallenge | 'auto'
  /** Executable run as `HOOK present|cleanup FQDN VALUE` for dns-01 (absolute path), or null. */
  dns_hook: string | null
  /** Extra CA certificates (PEM) trusted for the directory's own TLS, e.g. a test CA; null: system roots. */
  directory_ca: string | null
  /** Renew when this many seconds are left; null: at two thirds of the lifetime (with jitter). */
  renew_before_expiry_s: number | null
  /** New orders per rolling hour across all names (Let's Encrypt allows 300 per 3 hours). */
  max_orders_per_hour: number
}

export interface RelayConfig {
  domain: string
  listen: {
    public: Address
    public_tls: { address: Address; certs: { cert: string; key: string }[] } | null
    /**
     * The agents' WebSocket endpoint: its own listener, or 'shared': on the visitors' HTTPS
     * listener (public_tls) at AGENTS_SHARED_PATH on `domain`, for networks that only allow 443.
     */
    agents: Address | 'shared'
    admin: Address | null
    /** Where other relays of the cluster forward requests and check readiness (needs `cluster`). */
    peer: Address | null
    /** Read a PROXY protocol v2 header on listen.public and public_tls from trust_proxy addresses (HAProxy send-proxy-v2). */
    public_proxy_protocol: boolean
  }
  tls: { cert: string; key: string } | null
  pki: string | null
  state: string | null
  admin_token_sha256: string | null
  trust_proxy: string[]
  acme: RelayAcme | null
  redirect_http: boolean
  heartbeat: { interval_ms: number; timeout_ms: number }
  limits: {
    max_streams_per_agent: number
    origin_timeout_ms: number
    headers_timeout_ms: number
    request_timeout_ms: number
    stall_timeout_ms: number
    max_body_bytes: number | null
    max_connections_per_ip: number
  }
  agents: Record<string, RelayAgentPolicy>
  /** Several relays sharing control state in Redis; null: a single relay. */
  cluster: RelayCluster | null
}

export const RELAY_DEFAULTS = {
  domain: 'localhost',
  listen: {
    public: '0.0.0.0:80',
    public_tls_address: '0.0.0.0:443',
    agents: '0.0.0.0:7443',
    admin: '127.0.0.1:7070',
  },
  acme_directory: 'https://acme-v02.api.letsencrypt.org/directory',
  acme_challenge: 'auto',
  acme_max_orders_per_hour: 30,
  redirect_http: false,
  heartbeat: { interval_ms: 10_000, timeout_ms: 20_000 },
  limits: {
    max_streams_per_agent: 1024,
    origin_timeout_ms: 60_000,
    headers_timeout_ms: 15_000,
    request_timeout_ms: 120_000,
    stall_timeout_ms: 60_000,
    max_body_bytes: null,
    max_connections_per_ip: 256,
  },
} as const

/** Where agents connect on the visitors' HTTPS listener with `listen.agents: shared` (on `domain`). */
export const AGENTS_SHARED_PATH = '/_porchlight/connect'

/** Agent names: what `cert issue NAME` puts in a certificate and what logs show. */
export const AGENT_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/
/** setTimeout fires at once past 2^31-1 ms (about 24.8 days); no timeout here needs more than a day. */
const MAX_DURATION_MS = 86_400_000
const MAX_LIST_ENTRIES = 1024

const address = (fallback: string) => convert((v) => parseAddress(requireString(v, '"host:port"'))).prefault(fallback)
const durationMs = (fallback: number, minMs: number) => z.number().int().min(minMs).max(MAX_DURATION_MS).default(fallback)
const count = (fallback: number, max: number) => z.number().int().min(1).max(max).default(fallback)

function hostPattern(value: unknown): string {
  const text = requireString(value, 'a hostname or "*.domain" pattern')
  const pattern = normalizeHostPattern(text)
  if (pattern === null) throw new Error(`invalid hostname pattern ${JSON.stringify(text)} (an exact name or "*." followed by a name)`)
  return pattern
}

function email(value: unknown): string {
  const text = requireString(value, 'an email address')
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(text)) throw new Error(`${JSON.stringify(text)} is not an email address`)
  return text
}

/**
 * An ACME directory URL: https://, or plain http only on a loopback address (a CA under test on
 * this machine); anything else would let a network attacker answer for the CA.
 */
function acmeDirectory(value: unknown): string {
  const text = requireString(value, 'an https:// URL')
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new Error(`${JSON.stringify(text)} is not a URL`)
  }
  const host = url.hostname.replace(/^\[|\]$/g, '')
  if (url.protocol === 'https:') return url.toString()
  if (url.protocol === 'http:' && isLoopbackHost(host)) return url.toString()
  throw new Error(`expected an https:// URL (plain http only on a loopback address), got ${JSON.stringify(text)}`)
}

/** One top-level schema per key of relay.yaml; see sections.ts for why they are separate. */
export function relaySections(ctx: SchemaContext) {
  const file = pemFile(ctx)
  const certPair = strict({ cert: file, key: file })
  return {
    domain: hostField('a DNS name like tunnel.example.com').prefault(RELAY_DEFAULTS.domain),
    listen: strict({
      public: address(RELAY_DEFAULTS.listen.public),
      public_tls: strict({
        address: address(RELAY_DEFAULTS.listen.public_tls_address),
        certs: z.array(certPair).max(MAX_LIST_ENTRIES).default([]),
      }).nullable().default(null),
      // "shared": on listen.public_tls at AGENTS_SHARED_PATH (same port as the visitors, e.g. 443).
      agents: convert((v): Address | 'shared' => (v === 'shared' ? 'shared' : parseAddress(requireString(v, '"host:port" or "shared"')))).prefault(RELAY_DEFAULTS.listen.agents),
      // `false` (or null) turns the admin listener off.
      admin: convert((v) => (v === false || v === null ? null : parseAddress(requireString(v, '"host:port" or false')))).prefault(RELAY_DEFAULTS.listen.admin),
      peer: convert((v) => (v === null || v === undefined ? null : parseAddress(requireString(v, '"host:port"')))).prefault(null),
      public_proxy_protocol: z.boolean().default(false),
    }).prefault({}),
    tls: certPair.nullable().default(null),
    pki: nullablePath(ctx),
    state: nullablePath(ctx),
    admin_token_sha256: convert((v) => (v === null ? null : sha256Spec(v))).prefault(null),
    trust_proxy: listOf(normalizeCidr, MAX_LIST_ENTRIES),
    acme: strict({
      directory: convert(acmeDirectory).prefault(RELAY_DEFAULTS.acme_directory),
      email: convert(email),
      names: listOf(hostPattern, MAX_LIST_ENTRIES),
      challenge: z.enum(['auto', 'http-01', 'tls-alpn-01', 'dns-01'], { error: 'expected auto, http-01, tls-alpn-01 or dns-01' }).default(RELAY_DEFAULTS.acme_challenge),
      dns_hook: convert((v) => (v === null || v === undefined ? null : checkExecutable(resolveConfigPath(v, ctx.baseDir, ctx.env)))).prefault(null),
      directory_ca: convert((v) => (v === null || v === undefined ? null : checkPemFile(resolveConfigPath(v, ctx.baseDir, ctx.env)))).prefault(null),
      renew_before_expiry_s: z.number().int().min(1).max(365 * 86_400).nullable().default(null),
      max_orders_per_hour: count(RELAY_DEFAULTS.acme_max_orders_per_hour, 300),
    }).nullable().default(null),
    redirect_http: z.boolean().default(RELAY_DEFAULTS.redirect_http),
    heartbeat: strict({
      interval_ms: durationMs(RELAY_DEFAULTS.heartbeat.interval_ms, 50),
      timeout_ms: durationMs(RELAY_DEFAULTS.heartbeat.timeout_ms, 50),
    }).prefault({}),
    limits: strict({
      max_streams_per_agent: count(RELAY_DEFAULTS.limits.max_streams_per_agent, 1_000_000),
      origin_timeout_ms: durationMs(RELAY_DEFAULTS.limits.origin_timeout_ms, 1),
      headers_timeout_ms: durationMs(RELAY_DEFAULTS.limits.headers_timeout_ms, 1),
      request_timeout_ms: durationMs(RELAY_DEFAULTS.limits.request_timeout_ms, 1),
      stall_timeout_ms: durationMs(RELAY_DEFAULTS.limits.stall_timeout_ms, 1),
      max_body_bytes: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).nullable().default(RELAY_DEFAULTS.limits.max_body_bytes),
      max_connections_per_ip: count(RELAY_DEFAULTS.limits.max_connections_per_ip, 1_000_000),
    }).prefault({}),
    agents: z.record(
      z.string().regex(AGENT_NAME, { error: 'use 1-63 lowercase letters, digits, "-" or "_", starting with a letter or digit' }),
      strict({
        token_sha256: convert(sha256Spec),
        require_cert: z.boolean().default(false),
        hosts: listOf(hostPattern, MAX_LIST_ENTRIES),
        tcp_ports: listOf(parsePortRange, MAX_LIST_ENTRIES),
        outbound: listOf(normalizeOutboundEntry, MAX_LIST_ENTRIES),
      }),
    ).default({}),
    cluster: clusterSection(ctx),
  }
}

export type RelaySections = ReturnType<typeof relaySections>
