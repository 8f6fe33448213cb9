import { PorchlightError } from '@porchlight/shared/errors'
import {
  cidrContains, classifyHost, ipRange, normalizeHostname, parseCidr, parseIp, type Cidr, type IpAddress,
} from '@porchlight/shared/net'

/**
 * May agent A's forward reach host:port? (SECURITY D1-D3; pure, no I/O.)
 *
 * Rules come from `agents.<name>.outbound` in relay.yaml, one destination per entry:
 *   smtp.example.com:587      a name (case-insensitive, trailing dot ignored)
 *   *.example.com:587         any name one or more labels below example.com (not example.com)
 *   203.0.113.5:25            one IPv4 address (canonical dotted-quad only)
 *   10.0.0.0/8:25             an IPv4 network
 *   [::1]:25                  one IPv6 address
 *   [2001:db8::/32]:443       an IPv6 network
 * The port is required and is a single port.
 *
 * A destination passes when its host matches a rule for that port — a name rule for names, an
 * IP/CIDR rule for IP literals — AND every address the name resolved to passes too. Addresses in
 * special ranges (anything but global unicast: loopback, private, link-local, unique-local, CGNAT,
 * reserved, NAT64/6to4/Teredo, ...) pass only when an IP rule for that port covers them and was
 * written for that range (its network address is in the same range: 10.0.0.0/8 covers 10.1.2.3,
 * 0.0.0.0/0 does not cover 127.0.0.1). The relay's own addresses pass only by a single-address
 * rule. Unspecified, broadcast and multicast addresses never pass. One bad address in an answer
 * refuses the whole destination (fail closed).
 */
export type OutboundRule =
  | { readonly kind: 'name'; readonly name: string; readonly port: number; readonly text: string }
  | { readonly kind: 'suffix'; readonly suffix: string; readonly port: number; readonly text: string }
  | { readonly kind: 'ip'; readonly cidr: Cidr; readonly port: number; readonly text: string }

export type DestinationVerdict =
  | { ok: true; address: string; addresses: string[] }
  | { ok: false; code: 'PL_ERR_POLICY_DEST_DENIED'; reason: string }

/** What the host is and whether a rule names it; decided before any DNS lookup. */
export type DestinationMatch =
  | { ok: true; kind: 'ip'; address: string }
  | { ok: true; kind: 'name'; name: string }
  | { ok: false; code: 'PL_ERR_POLICY_DEST_DENIED'; reason: string }

const NEVER_DIALLED = new Set(['unspecified', 'broadcast', 'multicast'])

/** Parses one entry; the reason names what is wrong. */
export function parseOutboundRule(entry: string): { ok: true; rule: OutboundRule } | { ok: false; reason: string } {
  const split = splitHostPort(entry)
  if (!split.ok) return split
  const { host, port, bracketed } = split
  if (bracketed || /^[0-9.]+(\/[0-9]+)?$/.test(host)) {
    const cidr = parseCidr(host)
    // Brackets hold IPv6 text only ("[10.0.0.1]" is refused); "[::ffff:a.b.c.d]" folds to IPv4.
    if (cidr === null || (bracketed && !host.includes(':')) || (!bracketed && cidr.network.kind() !== 'ipv4')) {
      return { ok: false, reason: `"${host}" is not a canonical IP address or CIDR${bracketed ? ' (IPv6 inside brackets)' : ''}` }
    }
    return { ok: true, rule: { kind: 'ip', cidr, port, text: entry } }
  }
  if (host.startsWith('*.')) {
    const suffix = normalizeHostname(host.slice(2))
    if (suffix === null) return { ok: false, reason: `"${host}" is not a valid wildcard name` }
    return { ok: true, rule: { kind: 'suffix', suffix, port, text: entry } }
  }
  const name = normalizeHostname(host)
  if (name === null) return { ok: false, reason: `"${host}" is not a valid hostname, IP address or CIDR` }
  return { ok: true, rule: { kind: 'name', name, port, text: entry } }
}

/** Parses a whole `outbound` list; throws PL_ERR_CONFIG_INVALID naming every bad entry. */
export function parseOutboundRules(list: readonly string[]): OutboundRule[] {
  const rules: OutboundRule[] = []
  const issues: Array<{ path: string; message: string }> = []
  list.forEach((entry, i) => {
    const parsed = parseOutboundRule(entry)
    if (parsed.ok) rules.push(parsed.rule)
    else issues.push({ path: `outbound[${i}]`, message: parsed.reason })
  })
  if (issues.length > 0) {
    throw new PorchlightError('PL_ERR_CONFIG_INVALID', ['outbound', issues.map((x) => `${x.path}: ${x.message}`).join('\n')], { details: issues })
  }
  return rules
}

/**
 * First half of the check, before any lookup: the host must be a valid name or a canonical IP
 * literal, and a rule must name it for this port. Unlisted names are never resolved.
 */
export function matchDestination(host: string, port: number, rules: readonly OutboundRule[]): DestinationMatch {
  const where = `${host}:${port}`
  if (!Number.isInteger(port) || port < 1 || port > 65535) return deny(`invalid port in ${where}`)
  const kind = classifyHost(host)
  if (kind.kind === 'invalid') return deny(`${JSON.stringify(host)}: ${kind.reason}`)
  if (kind.kind === 'ip') {
    const listed = rules.some((r) => r.kind === 'ip' && r.port === port && cidrContains(r.cidr, kind.address))
    return listed ? { ok: true, kind: 'ip', address: kind.address.toString() } : deny(`no outbound rule allows ${where}`)
  }
  const listed = rules.some((r) => r.port === port && nameMatches(kind.name, r))
  return listed ? { ok: true, kind: 'name', name: kind.name } : deny(`no outbound rule allows ${kind.name}:${port}`)
}

/**
 * The full decision. `resolvedAddresses` is what the single lookup returned for a name (ignored
 * for an IP literal, which is its own address). Every address must pass; they come back in the
 * order to dial them (happy eyeballs: the families alternate, the resolver's first family first).
 */
export function checkDestination(
  host: string,
  port: number,
  resolvedAddresses: readonly string[],
  rules: readonly OutboundRule[],
  relayOwnAddresses: ReadonlySet<string>,
): DestinationVerdict {
  const match = matchDestination(host, port, rules)
  if (!match.ok) return match
  const candidates = match.kind === 'ip' ? [match.address] : resolvedAddresses
  if (candidates.length === 0) return deny(`${host} resolved to no addresses`)
  const own = parseAll(relayOwnAddresses)
  const checked: IpAddress[] = []
  for (const text of candidates) {
    const ip = parseIp(text)
    if (ip === null) return deny(`${host} resolved to an unusable address ${JSON.stringify(text)}`)
    const problem = addressProblem(ip, port, rules, own)
    if (problem !== null) return deny(`${host} resolved to ${ip.toString()}, ${problem}`)
    checked.push(ip)
  }
  const addresses = happyEyeballsOrder(checked).map((ip) => ip.toString())
  return { ok: true, address: addresses[0] ?? '', addresses }
}

/** RFC 8305 §4: alternate the address families, starting with the family of the first answer. */
function happyEyeballsOrder(ips: readonly IpAddress[]): IpAddress[] {
  const unique = [...new Map(ips.map((ip) => [ip.toString(), ip])).values()]
  const first = unique[0]?.kind()
  const mine = unique.filter((ip) => ip.kind() === first)
  const other = unique.filter((ip) => ip.kind() !== first)
  const out: IpAddress[] = []
  for (let i = 0; i < Math.max(mine.length, other.length); i++) {
    if (mine[i]) out.push(mine[i]!)
    if (other[i]) out.push(other[i]!)
  }
  return out
}

function addressProblem(ip: IpAddress, port: number, rules: readonly OutboundRule[], own: readonly IpAddress[]): string | null {
  const range = ipRange(ip)
  if (NEVER_DIALLED.has(range)) return `a ${range} address, which is never dialled`
  const ipRules = rules.filter((r): r is Extract<OutboundRule, { kind: 'ip' }> => r.kind === 'ip' && r.port === port && cidrContains(r.cidr, ip))
  const fullLength = ip.kind() === 'ipv4' ? 32 : 128
  if (own.some((o) => cidrContains({ network: o, prefixLength: fullLength }, ip))) {
    const single = ipRules.some((r) => r.cidr.prefixLength === fullLength)
    return single ? null : "one of the relay's own addresses, which needs a single-address rule"
  }
  if (range === 'unicast') return null
  const explicit = ipRules.some((r) => ipRange(r.cidr.network) === range)
  return explicit ? null : `a ${range} address, which needs an explicit IP rule for port ${port}`
}

function nameMatches(name: string, rule: OutboundRule): boolean {
  if (rule.kind === 'name') return rule.name === name
  if (rule.kind === 'suffix') return name.endsWith(`.${rule.suffix}`) && name.length > rule.suffix.length + 1
  return false
}

function splitHostPort(entry: string): { ok: true; host: string; port: number; bracketed: boolean } | { ok: false; reason: string } {
  let host: string
  let portText: string
  let bracketed = false
  if (entry.startsWith('[')) {
    const end = entry.indexOf(']')
    if (end === -1 || entry[end + 1] !== ':') return { ok: false, reason: 'expected "[ipv6]:port"' }
    host = entry.slice(1, end)
    portText = entry.slice(end + 2)
    bracketed = true
  } else {
    const colon = entry.lastIndexOf(':')
    if (colon === -1) return { ok: false, reason: 'missing ":port"' }
    host = entry.slice(0, colon)
    portText = entry.slice(colon + 1)
    if (host.includes(':')) return { ok: false, reason: 'IPv6 addresses need brackets, e.g. "[::1]:25"' }
  }
  if (!/^[1-9][0-9]{0,4}$/.test(portText) || Number(portText) > 65535) return { ok: false, reason: `invalid port "${portText}" (1-65535)` }
  if (host.length === 0) return { ok: false, reason: 'missing host' }
  return { ok: true, host, port: Number(portText), bracketed }
}

function parseAll(addresses: ReadonlySet<string>): IpAddress[] {
  const out: IpAddress[] = []
  for (const text of addresses) {
    const ip = parseIp(text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text)
    if (ip !== null) out.push(ip)
  }
  return out
}

function deny(reason: string): { ok: false; code: 'PL_ERR_POLICY_DEST_DENIED'; reason: string } {
  return { ok: false, code: 'PL_ERR_POLICY_DEST_DENIED', reason }
}
