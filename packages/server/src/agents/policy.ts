import { hostMatchesPattern, normalizeHostname } from '@porchlight/shared/config'

/**
 * What an agent may publish. Pure: the registry asks, this answers.
 * A tunnel's `host` is either a bare name ("blog" -> "blog.<domain>") or a full hostname.
 */
export type HostDecision =
  | { ok: true; host: string }
  | { ok: false; code: 'PL_ERR_POLICY_HOST_INVALID' | 'PL_ERR_POLICY_HOST_DENIED'; host: string }

export function resolveTunnelHost(requested: string, domain: string): string | null {
  const name = requested.includes('.') ? requested : `${requested}.${domain}`
  return normalizeHostname(name)
}

export function decideHost(requested: string, domain: string, allowedPatterns: readonly string[], reservedHosts: ReadonlySet<string>): HostDecision {
  const host = resolveTunnelHost(requested, domain)
  if (host === null) return { ok: false, code: 'PL_ERR_POLICY_HOST_INVALID', host: requested.slice(0, 253) }
  // Hosts the relay itself answers on (admin, dashboards) are never claimable.
  if (reservedHosts.has(host)) return { ok: false, code: 'PL_ERR_POLICY_HOST_DENIED', host }
  if (!allowedPatterns.some((pattern) => hostMatchesPattern(host, pattern))) {
    return { ok: false, code: 'PL_ERR_POLICY_HOST_DENIED', host }
  }
  return { ok: true, host }
}
