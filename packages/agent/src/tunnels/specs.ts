import { formatAddress, type AccessConfig, type AgentTunnel } from '@porchlight/shared/config'
import type { AccessSpec, OriginSpec, TunnelSpec } from '@porchlight/shared/protocol'
import { originTarget } from './origins.js'

/**
 * The `publish` payload for the agent's http and tcp tunnels (forwards are agent-side listeners
 * and are never published). Empty or default fields are left out so the relay applies its defaults.
 * `connectionStreams`: http tunnels take one piped stream per visitor connection (their `origin`
 * tells the relay the Host and path prefix to write); false while the agent must see each
 * exchange (inspector, terminal view), which needs one parsed stream per request.
 */
export function toTunnelSpecs(tunnels: ReadonlyArray<AgentTunnel>, opts: { connectionStreams: boolean } = { connectionStreams: true }): TunnelSpec[] {
  const specs: TunnelSpec[] = []
  for (const t of tunnels) {
    if (t.kind === 'http') {
      const origin = opts.connectionStreams ? originSpec(t) : null
      specs.push({ id: t.id, kind: 'http', host: t.http, ...(t.access !== null ? { access: toAccessSpec(t.access) } : {}), ...(origin !== null ? { origin } : {}) })
    } else if (t.kind === 'tcp') {
      specs.push({
        id: t.id,
        kind: 'tcp',
        ...(t.tcp !== 0 ? { remote_port: t.tcp } : {}),
        ...(t.allow_ips.length > 0 ? { allow_ips: [...t.allow_ips] } : {}),
        ...(t.proxy_protocol !== null ? { proxy_protocol: t.proxy_protocol } : {}),
      })
    }
  }
  return specs
}

/** Host header and path prefix for the relay's requests; null for an unusable `to` (per-request path). */
export function originSpec(tunnel: Extract<AgentTunnel, { kind: 'http' }>): OriginSpec | null {
  const target = originTarget(tunnel)
  if (target instanceof Error) return null
  const host = tunnel.host_header ?? target.host
  const path = target.pathname.replace(/\/$/, '')
  // The same bounds the relay's schema applies; anything else keeps the per-request path.
  if (!/^[\x21-\x7e]{1,255}$/.test(host) || !/^(\/[\x21-\x7e]*)?$/.test(path) || path.length > 2048) return null
  return { host, path }
}

export function toAccessSpec(access: AccessConfig): AccessSpec {
  return {
    links: access.links,
    ...(access.basic !== null ? { basic: { user: access.basic.user, password_hash: access.basic.password_hash } } : {}),
    ...(access.allow_ips.length > 0 ? { allow_ips: [...access.allow_ips] } : {}),
    client_certs: access.client_certs,
  }
}

/** The local side of a tunnel as printed in `Forwarding A -> B` lines and the status API. */
export function localTarget(tunnel: AgentTunnel): string {
  if (tunnel.kind === 'http') return tunnel.to
  if (tunnel.kind === 'tcp') return formatAddress(tunnel.to)
  return formatAddress({ host: tunnel.to.host, port: tunnel.to.port })
}

/** Two configs of one tunnel id are served identically (reload keeps such forward listeners). */
export function sameTunnel(a: AgentTunnel, b: AgentTunnel): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}
