import { Counter, Gauge, Registry as PromRegistry, collectDefaultMetrics } from 'prom-client'

/** Prometheus metrics (prom-client), one registry per relay so tests can build several. */
export interface Metrics {
  registry: PromRegistry
  requests: Counter<'status'>
  sessions: Counter<string>
  /** Connections refused by a limit (`limit`), per listener; `answered`: it got a 503 first. */
  refusals: Counter<'limit' | 'listener' | 'answered'>
  /** Failed reads of revoked.json (the last good set stays in force). */
  revocationErrors: Counter<string>
}

export function createMetrics(connectedAgents: () => number): Metrics {
  const registry = new PromRegistry()
  // The event-loop delay histogram samples every 10 ms by default: 100 wake-ups a second on an
  // idle relay. Every 100 ms still shows a stalled loop.
  collectDefaultMetrics({ register: registry, prefix: 'porchlight_relay_', eventLoopMonitoringPrecision: 100 })
  const requests = new Counter({ name: 'porchlight_http_requests_total', help: 'Visitor HTTP requests by status', labelNames: ['status'] as const, registers: [registry] })
  const sessions = new Counter({ name: 'porchlight_agent_sessions_total', help: 'Agent sessions accepted', registers: [registry] })
  new Gauge({ name: 'porchlight_agents_connected', help: 'Agents connected now', registers: [registry], collect() { this.set(connectedAgents()) } })
  const refusals = new Counter({ name: 'porchlight_connections_refused_total', help: 'Connections refused by a limit', labelNames: ['limit', 'listener', 'answered'] as const, registers: [registry] })
  const revocationErrors = new Counter({ name: 'porchlight_revocation_list_errors_total', help: 'Failed reads of the revocation list (the last good one stays in force)', registers: [registry] })
  return { registry, requests, sessions, refusals, revocationErrors }
}
