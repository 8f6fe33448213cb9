import type { AgentStatus } from '../agent.js'
import type { TunnelTraffic } from '../inspector/traffic.js'
import type { CliIo } from '../cli-io.js'
import { formatDurationMs } from '../duration.js'
import { callAgent } from '../inspect-client.js'

/** `porchlight status [-c agent.yaml] [--json]`: asks the running agent's status API. */
export async function runStatus(options: { config?: string | undefined; json?: boolean }, io: CliIo, now: () => number = Date.now): Promise<number> {
  const status = (await callAgent(options.config, 'GET', '/api/status')) as AgentStatus
  if (options.json === true) {
    io.out(JSON.stringify(status, null, 2))
    return 0
  }
  for (const line of formatStatus(status, now())) io.out(line)
  return 0
}

/** "12 requests (1 open): 2xx 10, 4xx 1, 5xx 1, errors 0; in 1.2 KiB, out 3.4 MiB" */
export function formatTraffic(t: TunnelTraffic): string {
  const classes = (['1xx', '2xx', '3xx', '4xx', '5xx'] as const).filter((k) => t.byStatus[k] > 0).map((k) => `${k} ${t.byStatus[k]}`)
  classes.push(`errors ${t.errors}`)
  return `${t.requests} requests (${t.open} open): ${classes.join(', ')}; in ${formatBytes(t.bytesIn)}, out ${formatBytes(t.bytesOut)}`
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`
  return `${(n / 1024 ** 3).toFixed(2)} GiB`
}

/** Human-readable status lines (pure, for tests). */
export function formatStatus(status: AgentStatus, nowMs: number): string[] {
  const lines: string[] = []
  let link: string
  if (status.connected) {
    link = `connected to ${status.relay} as ${status.agent ?? '?'} (session ${status.session ?? '?'})`
  } else if (status.reconnect !== null && status.reconnect.nextAttemptAt !== null) {
    const inMs = Math.max(0, Date.parse(status.reconnect.nextAttemptAt) - nowMs)
    link = `reconnecting to ${status.relay} (attempt ${status.reconnect.attempt}, next in ${formatDurationMs(inMs)})`
  } else {
    link = `${status.state} (${status.relay})`
  }
  lines.push(`Agent    porchlight ${status.version}: ${link}`)
  if (status.lastError !== null && !status.connected) lines.push(`Last error  ${status.lastError.code}: ${status.lastError.message}`)
  if (status.inspect !== null) lines.push(`Inspect  http://${status.inspect}/ (request inspector; JSON at /api/status)`)
  lines.push(`Streams  ${status.streams} in flight`)
  if (status.tunnels.length === 0) {
    lines.push('Tunnels  none')
    return lines
  }
  lines.push('Tunnels')
  const width = Math.max(...status.tunnels.map((t) => t.id.length))
  for (const t of status.tunnels) {
    const where = t.url !== null ? `${t.url} -> ${t.to}` : `-> ${t.to}`
    const why = t.code !== undefined ? `  ${t.code}: ${t.message ?? ''}` : t.message !== undefined ? `  ${t.message}` : ''
    lines.push(`  ${t.state.padEnd(9)} ${t.id.padEnd(width)}  ${where}${why}`)
    if (t.traffic !== undefined) lines.push(`  ${''.padEnd(9)} ${''.padEnd(width)}  ${formatTraffic(t.traffic)}`)
  }
  return lines
}
