import { isIP, isIPv4, isIPv6 } from 'node:net'
import { z } from 'zod'
import { formatAddress, parseDialTarget, parseLocalAddress, parsePort } from './address.js'
import type { AgentTunnel } from './agent-schema.js'
import { normalizeCidr } from './cidr.js'
import { convert, listOf, requireString, strict, validate } from './fields.js'
import { normalizeHostname } from './hostname.js'
import { describe, type IssueList, type PathSegment } from './issues.js'

/**
 * One entry of agent.yaml `tunnels`. The kind is whichever of `http`, `tcp` or `forward` the
 * entry has (exactly one); each kind is a strict object of its own, so an issue names the key
 * under tunnels[i] and an unknown key gets a suggestion from that kind's keys.
 */
const KINDS = ['http', 'tcp', 'forward'] as const
const MAX_ALLOW_IPS = 256

/** `http:` value: a bare name ("blog", becomes blog.<domain> on the relay) or a full hostname. */
function tunnelName(value: unknown): string {
  const text = requireString(value, 'a name like "blog" or a hostname like "blog.example.org"')
  if (text.includes('*')) throw new Error(`wildcards cannot be published: ${JSON.stringify(text)}`)
  const name = normalizeHostname(text)
  if (name === null || isIP(name) !== 0) throw new Error(`invalid name ${JSON.stringify(text)} (letters, digits and "-", dot-separated)`)
  return name
}

/**
 * `to:` of an http tunnel: 3000, "3000", "127.0.0.1:3000", "[::1]:3000", "localhost:3000" or
 * "http(s)://host[:port]". Normalised to "scheme://host:port" with the port always written.
 */
export function normalizeHttpTarget(value: unknown): string {
  if (typeof value === 'string' && value.includes('://')) {
    let url: URL
    try {
      url = new URL(value)
    } catch {
      throw new Error(`${JSON.stringify(value)} is not a URL`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`expected an http:// or https:// URL, got ${JSON.stringify(value)}`)
    if (url.username !== '' || url.password !== '') throw new Error('credentials in the local URL are not supported')
    if (url.pathname !== '/' || url.search !== '' || url.hash !== '') throw new Error(`the local URL must not have a path, query or fragment: ${JSON.stringify(value)}`)
    const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port)
    return `${url.protocol}//${url.hostname}:${port}`
  }
  const target = parseDialTarget(value)
  return `http://${formatAddress(target)}`
}

/** `host_header:` a hostname or IP, optionally with ":port" (what the local virtual host expects). */
function hostHeader(value: unknown): string | null {
  if (value === null || value === undefined) return null
  const text = requireString(value, 'a hostname')
  const m = /^(\[[^\]]*\]|[^:]*)(?::([0-9]{1,5}))?$/.exec(text)
  const host = m?.[1] ?? ''
  const ok = host.startsWith('[') ? isIPv6(host.slice(1, -1)) : isIPv4(host) || normalizeHostname(host) !== null
  if (m === null || !ok) throw new Error(`invalid host header ${describe(value)} (expected a hostname, optionally with :port)`)
  const port = m[2] === undefined ? '' : `:${parsePort(m[2])}`
  return `${host.toLowerCase().replace(/\.$/, '')}${port}`
}

function basicUser(value: unknown): string {
  const text = requireString(value, 'a user name')
  if (text.includes(':') || /[\x00-\x1f\x7f]/.test(text)) throw new Error('a basic-auth user name cannot contain ":" or control characters')
  if (text.length > 256) throw new Error('must be at most 256 characters long')
  return text
}

function passwordHash(value: unknown): string {
  const text = requireString(value, 'an scrypt hash')
  if (!text.startsWith('scrypt:') || text.length > 512) {
    throw new Error('expected a hash from `porchlight hash-password` ("scrypt:..."), never a plain password')
  }
  return text
}

/** The target a forward's relay side dials: an explicit "host:port". */
function forwardTarget(value: unknown): { host: string; port: number } {
  if (typeof value === 'number' || (typeof value === 'string' && /^[0-9]+$/.test(value))) {
    throw new Error(`expected "host:port" (the relay dials it), got ${describe(value)}`)
  }
  return parseDialTarget(requireString(value, '"host:port"'))
}

/** Most certificate names one site's `client_certs` may list. */
const MAX_CERT_NAMES = 256

const access = strict({
  links: z.boolean().default(false),
  basic: strict({ user: convert(basicUser), password_hash: convert(passwordHash) }).nullable().default(null),
  allow_ips: listOf(normalizeCidr, MAX_ALLOW_IPS),
  // true: any visitor certificate of the relay's CA; a list: only visitor certificates with these names.
  client_certs: z.union([z.boolean(), z.array(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'a certificate name: lowercase letters, digits, "_" or "-"')).min(1).max(MAX_CERT_NAMES)]).default(false),
})

/** One strict schema per tunnel kind (exported for the test that keeps examples and docs complete). */
export const tunnelSchemas = {
  http: strict({
    http: convert(tunnelName),
    to: convert(normalizeHttpTarget),
    host_header: convert(hostHeader).prefault(null),
    access: access.nullable().default(null),
  }),
  tcp: strict({
    tcp: convert((v) => parsePort(v, 0)),
    to: convert(parseDialTarget),
    allow_ips: listOf(normalizeCidr, MAX_ALLOW_IPS),
    proxy_protocol: z.enum(['v1', 'v2']).nullable().default(null),
  }),
  forward: strict({
    forward: convert((v) => parseLocalAddress(v)),
    to: convert(forwardTarget),
  }),
}

/** Validates one tunnel entry; records issues under `path` and returns undefined when invalid. */
export function parseTunnel(value: unknown, path: readonly PathSegment[], issues: IssueList): AgentTunnel | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    issues.add(path, `expected a mapping with one of http, tcp or forward, got ${describe(value)}`)
    return undefined
  }
  const kinds = KINDS.filter((k) => Object.hasOwn(value, k))
  if (kinds.length !== 1) {
    issues.add(path, kinds.length === 0 ? 'a tunnel needs one of http, tcp or forward' : `a tunnel has exactly one of http, tcp or forward, not ${kinds.join(' and ')}`)
    return undefined
  }
  switch (kinds[0]) {
    case 'http': {
      const t = validate(tunnelSchemas.http, value, path, issues)
      return t && { kind: 'http', id: t.http, ...t }
    }
    case 'tcp': {
      const t = validate(tunnelSchemas.tcp, value, path, issues)
      return t && { kind: 'tcp', id: `tcp:${t.tcp === 0 ? t.to.port : t.tcp}`, ...t }
    }
    default: {
      const t = validate(tunnelSchemas.forward, value, path, issues)
      return t && { kind: 'forward', id: `forward:${t.forward.port}`, ...t }
    }
  }
}
