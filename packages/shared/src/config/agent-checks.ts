import { formatAddress } from './address.js'
import type { AgentTunnel } from './agent-schema.js'
import { isLoopbackHost } from './hostname.js'
import type { IssueList } from './issues.js'

/**
 * Rules over the whole agent config. `tunnels` holds the entries that validated, with their
 * index in the file so issues point at the right line. Returns warnings; errors go to `issues`.
 */
export function checkAgent(
  relay: string | undefined,
  tunnels: ReadonlyArray<{ index: number; tunnel: AgentTunnel }>,
  inspect: { host: string; port: number } | null | undefined,
  issues: IssueList,
): string[] {
  const warnings: string[] = []
  const ids = new Map<string, number>()
  const localPorts = new Map<number, string>()
  if (inspect && inspect.port !== 0) localPorts.set(inspect.port, 'inspect')
  for (const { index, tunnel } of tunnels) {
    const first = ids.get(tunnel.id)
    if (first !== undefined) issues.add(['tunnels', index], `duplicate tunnel ${JSON.stringify(tunnel.id)} (same as tunnels[${first}])`)
    else ids.set(tunnel.id, index)
    if (tunnel.kind !== 'forward') continue
    const other = localPorts.get(tunnel.forward.port)
    if (other !== undefined && first === undefined) issues.add(['tunnels', index, 'forward'], `port ${tunnel.forward.port} is also used by ${other}`)
    if (tunnel.forward.port !== 0) localPorts.set(tunnel.forward.port, `tunnels[${index}]`)
    if (!isLoopbackHost(tunnel.forward.host)) {
      // SECURITY D: a LAN-reachable forward turns the laptop into an open relay for its neighbours.
      warnings.push(`tunnels[${index}].forward: listening on ${formatAddress(tunnel.forward)} lets other machines send through the relay; use 127.0.0.1`)
    }
  }
  if (inspect && !isLoopbackHost(inspect.host)) {
    // The status API has no authentication and can create share links: loopback only.
    issues.add(['inspect'], `must be a loopback address such as 127.0.0.1:4040 (the status API has no authentication), got ${formatAddress(inspect)}`)
  }
  if (relay?.startsWith('ws://')) {
    const host = new URL(relay).hostname.replace(/^\[|\]$/g, '')
    if (!isLoopbackHost(host)) warnings.push(`relay: ${relay} is not encrypted, so the token crosses the network in clear text; use wss://`)
  }
  return warnings
}
