import { formatAddress, type Address } from './address.js'
import { isLoopbackHost } from './hostname.js'
import type { IssueList } from './issues.js'
import { formatPortRange } from './port-range.js'
import type { RelaySections } from './relay-schema.js'
import type { SectionOutputs } from './sections.js'

type Sections = SectionOutputs<RelaySections>

/**
 * Rules that involve more than one key. Each runs when the sections it reads validated, so one
 * broken section does not hide the others' problems. Returns warnings; errors go to `issues`.
 */
export function checkRelay(s: Sections, issues: IssueList): string[] {
  const warnings: string[] = []
  const { listen, heartbeat, limits, agents } = s

  if (listen?.admin && s.admin_token_sha256 === null && !isLoopbackHost(listen.admin.host)) {
    // SECURITY H6: never serve the admin API beyond this machine without a token.
    issues.add(['listen', 'admin'], `admin listener on ${formatAddress(listen.admin)} is reachable from other machines; set admin_token_sha256 or bind 127.0.0.1`)
  }
  if (heartbeat && heartbeat.timeout_ms < heartbeat.interval_ms) {
    issues.add(['heartbeat', 'timeout_ms'], `must be at least heartbeat.interval_ms (${heartbeat.interval_ms}), got ${heartbeat.timeout_ms}`)
  }
  if (limits && limits.headers_timeout_ms > limits.request_timeout_ms) {
    issues.add(['limits', 'headers_timeout_ms'], `must not exceed limits.request_timeout_ms (${limits.request_timeout_ms}), got ${limits.headers_timeout_ms}`)
  }
  if (listen) checkListeners(listen, issues)
  if (listen && s.cluster !== undefined) {
    // The peer listener carries forwarded visitor requests: it exists exactly when the relay is a member.
    if (s.cluster !== null && listen.peer === null) issues.add(['listen', 'peer'], 'cluster needs listen.peer (where other relays forward requests), e.g. 10.0.0.1:7444')
    if (s.cluster === null && listen.peer !== null) issues.add(['listen', 'peer'], 'listen.peer is only used with cluster; set cluster or remove listen.peer')
  }
  if (s.cluster) {
    // Peers dial advertise.peer: its scheme must match what listen.peer speaks.
    const https = s.cluster.advertise.peer.startsWith('https:')
    if (s.cluster.peer_tls !== null && !https) issues.add(['cluster', 'advertise', 'peer'], `cluster.peer_tls makes listen.peer https; advertise it as https://, got ${JSON.stringify(s.cluster.advertise.peer)}`)
    if (s.cluster.peer_tls === null && https) issues.add(['cluster', 'advertise', 'peer'], 'an https:// peer URL needs cluster.peer_tls (cert, key, ca) for mTLS between relays')
  }
  if (listen?.public_proxy_protocol === true && (s.trust_proxy ?? []).length === 0) {
    issues.add(['listen', 'public_proxy_protocol'], 'PROXY headers are read only from trust_proxy addresses; list your load balancer in trust_proxy')
  }
  if (listen && s.acme !== undefined) {
    if (listen.public_tls && listen.public_tls.certs.length === 0 && s.acme === null) {
      issues.add(['listen', 'public_tls', 'certs'], 'needs at least one { cert, key } unless acme is set')
    }
    if (s.acme !== null && listen.public_tls === null) {
      issues.add(['acme'], 'acme certificates are served on listen.public_tls; set listen.public_tls (address: 0.0.0.0:443)')
    }
    if (s.acme) checkAcme(s.acme, listen, s.state, issues, warnings)
  }
  if (listen && s.redirect_http === true && listen.public_tls === null) {
    issues.add(['redirect_http'], 'redirecting to https needs listen.public_tls')
  }
  if (listen?.agents === 'shared') {
    // The agents' endpoint lives on the visitors' HTTPS listener, with its certificates; `tls:` is the
    // dedicated agents listener's and client certificates come from the CA in pki.
    if (listen.public_tls === null) issues.add(['listen', 'agents'], '"shared" puts the agents\' endpoint on listen.public_tls; set listen.public_tls (address: 0.0.0.0:443)')
    if (s.tls) warnings.push('tls: unused with listen.agents: shared (agents get the certificate of listen.public_tls for the relay\'s domain)')
  } else if (listen && !isLoopbackHost(listen.agents.host) && s.tls === null) {
    warnings.push(`listen.agents: agents connect to ${formatAddress(listen.agents)} without TLS, so tokens cross the network unencrypted; set tls`)
  }
  for (const cidr of s.trust_proxy ?? []) {
    if (cidr.endsWith('/0')) warnings.push(`trust_proxy: ${cidr} believes X-Forwarded-For from every address`)
  }
  if (agents !== undefined) {
    if (Object.keys(agents).length === 0) warnings.push('agents: no agents are configured, so no agent can connect')
    for (const [name, policy] of Object.entries(agents)) {
      if (policy.require_cert && s.tls === null && listen?.agents !== 'shared') issues.add(['agents', name, 'require_cert'], 'client certificates need TLS on the agents listener; set tls')
      if (policy.require_cert && s.pki === null) issues.add(['agents', name, 'require_cert'], 'client certificates are checked against the CA in pki; set pki')
      flagDuplicates(policy.hosts, ['agents', name, 'hosts'], issues)
      flagDuplicates(policy.outbound, ['agents', name, 'outbound'], issues)
      if (listen) warnOwnPorts(name, policy.tcp_ports, listen, warnings)
    }
  }
  return warnings
}

type Listen = NonNullable<Sections['listen']>
type Acme = NonNullable<Sections['acme']>

/** What each challenge needs: a hook for dns-01 (and for every "*." name), the listener the CA connects to, a state dir. */
function checkAcme(acme: Acme, listen: Listen, state: string | null | undefined, issues: IssueList, warnings: string[]): void {
  if (state === null) issues.add(['acme'], 'the ACME account key and certificates are kept in state; set state')
  const wildcards = acme.names.filter((n) => n.startsWith('*.'))
  if (acme.dns_hook === null) {
    if (acme.challenge === 'dns-01') issues.add(['acme', 'dns_hook'], 'challenge dns-01 needs dns_hook (an executable run as `HOOK present|cleanup FQDN VALUE`)')
    acme.names.forEach((n, i) => {
      if (n.startsWith('*.')) issues.add(['acme', 'names', i], `${n}: a wildcard certificate needs the dns-01 challenge; set acme.dns_hook`)
    })
  } else if (acme.challenge !== 'dns-01' && wildcards.length === 0) {
    warnings.push('acme.dns_hook: set, but neither challenge dns-01 nor a "*." name uses it')
  }
  flagDuplicates(acme.names, ['acme', 'names'], issues)
  const challenge = acme.challenge === 'auto' ? (isLoopbackHost(listen.public.host) ? 'tls-alpn-01' : 'http-01') : acme.challenge
  if (challenge === 'http-01' && listen.public.port !== 80 && listen.public.port !== 0) {
    warnings.push(`acme.challenge: http-01 is checked on port 80; listen.public is ${formatAddress(listen.public)}, so forward port 80 to it`)
  }
  if (challenge === 'tls-alpn-01' && listen.public_tls && listen.public_tls.address.port !== 443 && listen.public_tls.address.port !== 0) {
    warnings.push(`acme.challenge: tls-alpn-01 is checked on port 443; listen.public_tls is ${formatAddress(listen.public_tls.address)}, so forward port 443 to it`)
  }
  if (acme.challenge === 'auto' && challenge === 'tls-alpn-01' && listen.public_tls === null) {
    issues.add(['acme', 'challenge'], 'auto picks tls-alpn-01 (listen.public is loopback), which needs listen.public_tls')
  }
}

function listenersOf(listen: Listen): Array<[string, Address]> {
  const out: Array<[string, Address]> = [['listen.public', listen.public]]
  // "shared" is no listener of its own: it rides on listen.public_tls, so it cannot clash.
  if (listen.agents !== 'shared') out.push(['listen.agents', listen.agents])
  if (listen.public_tls) out.push(['listen.public_tls.address', listen.public_tls.address])
  if (listen.admin) out.push(['listen.admin', listen.admin])
  if (listen.peer) out.push(['listen.peer', listen.peer])
  return out
}

/** Two listeners on one port clash when either binds every interface or both bind the same host. */
function checkListeners(listen: Listen, issues: IssueList): void {
  const seen: Array<[string, Address]> = []
  for (const [name, a] of listenersOf(listen)) {
    const clash = seen.find(([, b]) => a.port !== 0 && a.port === b.port && (a.host === b.host || isWildcard(a.host) || isWildcard(b.host)))
    if (clash) issues.add(name.split('.'), `${formatAddress(a)} overlaps ${clash[0]} (${formatAddress(clash[1])})`)
    seen.push([name, a])
  }
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::'
}

function flagDuplicates(list: readonly string[], path: Array<string | number>, issues: IssueList): void {
  list.forEach((entry, i) => {
    const first = list.indexOf(entry)
    if (first !== i) issues.add([...path, i], `duplicate of ${path[path.length - 1]}[${first}] (${JSON.stringify(entry)})`)
  })
}

function warnOwnPorts(agent: string, ranges: ReadonlyArray<{ from: number; to: number }>, listen: Listen, warnings: string[]): void {
  for (const [name, a] of listenersOf(listen)) {
    const range = ranges.find((r) => a.port !== 0 && a.port >= r.from && a.port <= r.to)
    if (range) warnings.push(`agents.${agent}.tcp_ports: ${formatPortRange(range)} includes ${name} port ${a.port}, which the relay itself uses`)
  }
}
