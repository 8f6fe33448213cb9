import { Counter, Gauge, Histogram, Registry as PromRegistry, collectDefaultMetrics } from 'prom-client'
import { LabelFolder } from './label-fold.js'

/** Distinct `host` (and TCP `port`) label values per relay; more fold into `other` (docs/observability.md). */
export const HOST_LABEL_CAP = 200
/** A host whose series saw no request for this long gives its label slot back (its series are removed). */
export const HOST_IDLE_MS = 60 * 60_000
/** The `agent` and `host` of requests the relay answered before routing them (unknown host, bad request). */
export const UNROUTED_LABEL = '-'
/** Request-duration buckets in seconds: a local dev server answers in ms, a slow one in seconds. */
export const DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/** Limits whose refusals `porchlight_limit_refusals_total{limit}` counts. */
export type LimitName = 'max_connections_per_ip' | 'tcp_max_connections' | 'mux_streams' | 'max_body_bytes' | 'basic_auth_failures' | 'agent_auth_failures' | 'admin_login_failures'
/** Why an agent's upgrade was refused, for `porchlight_agent_auth_failures_total{reason}`. */
export type AuthFailureReason = 'bad_token' | 'rate_limited' | 'cert_rejected' | 'cert_required' | 'bad_instance'
/** How an outbound forward ended its set-up, for `porchlight_forward_connections_total{result}`. */
export type ForwardResult = 'ok' | 'denied' | 'dns_failed' | 'dial_failed' | 'dial_timeout' | 'error'

/** What the gauges read at scrape time: the live sessions. */
export interface SessionView {
  readonly agent: string
  readonly mux: { readonly streamCount: number }
}

/** Prometheus metrics (prom-client), one registry per relay so tests can build several. */
export interface Metrics {
  registry: PromRegistry
  /** Visitor HTTP requests by exact status (no host: the relay-wide view). */
  requests: Counter<'status'>
  sessions: Counter<string>
  /** Connections refused by a limit (`limit`), per listener; `answered`: it got a 503 first. */
  refusals: Counter<'limit' | 'listener' | 'answered'>
  /** Failed reads of revoked.json (the last good set stays in force). */
  revocationErrors: Counter<string>
  /** Per agent and host: requests by status class, duration, bytes. */
  http: HttpMeters
  tcp: TcpMeters
  forwards: ForwardMeters
  /** Counts one finished visitor request in the relay-wide series (children cached per status). */
  countStatus(status: number): void
  limitRefused(limit: LimitName): void
  authFailed(reason: AuthFailureReason): void
  /** A session accepted for an agent instance seen before in this process. */
  reconnected(agent: string): void
}

export function createMetrics(deps: { sessions: () => Iterable<SessionView>; now?: () => number }): Metrics {
  const now = deps.now ?? Date.now
  const registry = new PromRegistry()
  // The event-loop delay histogram samples every 10 ms by default: 100 wake-ups a second on an
  // idle relay. Every 100 ms still shows a stalled loop.
  collectDefaultMetrics({ register: registry, prefix: 'porchlight_relay_', eventLoopMonitoringPrecision: 100 })
  const registers = [registry]
  const requests = new Counter({ name: 'porchlight_http_requests_total', help: 'Visitor HTTP requests by status', labelNames: ['status'] as const, registers })
  const sessions = new Counter({ name: 'porchlight_agent_sessions_total', help: 'Agent sessions accepted', registers })
  new Gauge({ name: 'porchlight_agents_connected', help: 'Agents connected now', registers, collect() { this.set(count(deps.sessions())) } })
  const refusals = new Counter({ name: 'porchlight_connections_refused_total', help: 'Connections refused by a limit', labelNames: ['limit', 'listener', 'answered'] as const, registers })
  const revocationErrors = new Counter({ name: 'porchlight_revocation_list_errors_total', help: 'Failed reads of the revocation list (the last good one stays in force)', registers })
  const limits = new Counter({ name: 'porchlight_limit_refusals_total', help: 'Connections, streams and requests refused by a limit', labelNames: ['limit'] as const, registers })
  const authFailures = new Counter({ name: 'porchlight_agent_auth_failures_total', help: 'Agent connections refused at authentication, by reason', labelNames: ['reason'] as const, registers })
  const reconnects = new Counter({ name: 'porchlight_agent_reconnects_total', help: 'Sessions of an agent instance that had connected before', labelNames: ['agent'] as const, registers })
  const agents = new LabelFolder(HOST_LABEL_CAP)
  new Gauge({
    name: 'porchlight_agent_sessions', help: 'Live agent sessions', labelNames: ['agent'] as const, registers,
    collect() { setPerAgent(this, deps.sessions(), agents, () => 1) },
  })
  new Gauge({
    name: 'porchlight_agent_streams', help: 'Open mux streams per agent (each session\'s control stream included)', labelNames: ['agent'] as const, registers,
    collect() { setPerAgent(this, deps.sessions(), agents, (s) => s.mux.streamCount) },
  })

  const byStatus = new Map<number, Counter.Internal>()
  return {
    registry, requests, sessions, refusals, revocationErrors,
    http: new HttpMeters(registers, agents, now),
    tcp: new TcpMeters(registers, agents),
    forwards: new ForwardMeters(registers, agents),
    countStatus(status: number): void {
      let child = byStatus.get(status)
      if (child === undefined) {
        child = requests.labels(String(status))
        // Node only sends 100..999; the map stays small whatever origins answer.
        if (byStatus.size < 1000) byStatus.set(status, child)
      }
      child.inc()
    },
    limitRefused: (limit) => limits.inc({ limit }),
    authFailed: (reason) => authFailures.inc({ reason }),
    reconnected: (agent) => reconnects.inc({ agent: agents.fold(agent) }),
  }
}

function count(items: Iterable<unknown>): number {
  let n = 0
  for (const _ of items) n++
  return n
}

function setPerAgent(gauge: Gauge<'agent'>, sessions: Iterable<SessionView>, agents: LabelFolder, value: (s: SessionView) => number): void {
  const totals = new Map<string, number>()
  for (const s of sessions) {
    const agent = agents.fold(s.agent)
    totals.set(agent, (totals.get(agent) ?? 0) + value(s))
  }
  gauge.reset()
  for (const [agent, total] of totals) gauge.set({ agent }, total)
}

type Registers = PromRegistry[]

/** The children of one (agent, host) pair, resolved once so a request costs a few increments. */
export class RouteMeter {
  /** Set when the pair's series were removed (idle); the owner hands out a fresh meter next time. */
  released = false
  lastUsedMs: number
  private readonly byClass: Counter.Internal[]
  private readonly duration: Histogram.Internal<'agent' | 'host'>
  private readonly bytesIn: Counter.Internal
  private readonly bytesOut: Counter.Internal

  constructor(readonly agent: string, readonly host: string, private readonly m: HttpSeries, nowMs: number) {
    this.lastUsedMs = nowMs
    this.byClass = STATUS_CLASSES.map((c) => m.requests.labels(agent, host, c))
    this.duration = m.duration.labels(agent, host)
    this.bytesIn = m.bytes.labels(agent, host, 'in')
    this.bytesOut = m.bytes.labels(agent, host, 'out')
  }

  /** One finished request: its status, seconds, body bytes from and to the visitor. */
  finish(status: number, seconds: number, bytesIn: number, bytesOut: number, nowMs: number): void {
    this.lastUsedMs = nowMs
    const c = Math.floor(status / 100)
    this.byClass[c >= 1 && c <= 5 ? c - 1 : 4]!.inc()
    this.duration.observe(seconds)
    if (bytesIn > 0) this.bytesIn.inc(bytesIn)
    if (bytesOut > 0) this.bytesOut.inc(bytesOut)
  }

  /** Bytes of an upgraded (WebSocket) connection, counted when it closes. */
  addBytes(bytesIn: number, bytesOut: number, nowMs: number): void {
    this.lastUsedMs = nowMs
    if (bytesIn > 0) this.bytesIn.inc(bytesIn)
    if (bytesOut > 0) this.bytesOut.inc(bytesOut)
  }

  remove(): void {
    this.released = true
    for (const c of STATUS_CLASSES) this.m.requests.remove(this.agent, this.host, c)
    this.m.duration.remove(this.agent, this.host)
    this.m.bytes.remove(this.agent, this.host, 'in')
    this.m.bytes.remove(this.agent, this.host, 'out')
  }
}

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const

interface HttpSeries {
  requests: Counter<'agent' | 'host' | 'status_class'>
  duration: Histogram<'agent' | 'host'>
  bytes: Counter<'agent' | 'host' | 'direction'>
}

/**
 * Per-(agent, host) HTTP series with the host label folded past HOST_LABEL_CAP. Meters are cached
 * per route object, so the hot path is one WeakMap lookup; when the cap is reached, pairs idle for
 * HOST_IDLE_MS are removed first (quick shares come and go under fresh random names).
 */
export class HttpMeters {
  readonly unrouted: RouteMeter
  private readonly series: HttpSeries
  private readonly byRoute = new WeakMap<object, RouteMeter>()
  private readonly byKey = new Map<string, RouteMeter>()
  private readonly hosts: LabelFolder
  private readonly idleMs: number
  private lastSweepMs = -Infinity

  constructor(registers: Registers, private readonly agents: LabelFolder, private readonly now: () => number, opts: { hostCap?: number; idleMs?: number } = {}) {
    this.hosts = new LabelFolder(opts.hostCap ?? HOST_LABEL_CAP)
    this.idleMs = opts.idleMs ?? HOST_IDLE_MS
    this.series = {
      requests: new Counter({ name: 'porchlight_http_host_requests_total', help: 'Visitor HTTP requests per agent and host, by status class', labelNames: ['agent', 'host', 'status_class'] as const, registers }),
      duration: new Histogram({ name: 'porchlight_http_request_duration_seconds', help: 'Visitor HTTP request duration (WebSocket upgrades: until the 101), per agent and host', labelNames: ['agent', 'host'] as const, buckets: DURATION_BUCKETS_S, registers }),
      bytes: new Counter({ name: 'porchlight_http_bytes_total', help: 'Visitor HTTP body bytes per agent and host (in: from visitors, out: to visitors)', labelNames: ['agent', 'host', 'direction'] as const, registers }),
    }
    this.unrouted = new RouteMeter(UNROUTED_LABEL, UNROUTED_LABEL, this.series, now())
  }

  /** The meter of a route (any object with agent and host; cached on the object itself). */
  forRoute(route: { readonly agent: string; readonly host: string }): RouteMeter {
    let meter = this.byRoute.get(route)
    if (meter === undefined || meter.released) {
      meter = this.meter(route.agent, route.host)
      this.byRoute.set(route, meter)
    }
    return meter
  }

  /** Distinct host labels held now (the cap bounds it; `other` not included). */
  get hostLabels(): number {
    return this.hosts.size
  }

  private meter(agent: string, host: string): RouteMeter {
    const nowMs = this.now()
    if (!this.hosts.has(host) && this.hosts.size >= this.hosts.cap) this.sweepIdle(nowMs)
    const agentLabel = this.agents.fold(agent)
    const hostLabel = this.hosts.fold(host)
    const key = `${agentLabel}\n${hostLabel}`
    let meter = this.byKey.get(key)
    if (meter === undefined) {
      meter = new RouteMeter(agentLabel, hostLabel, this.series, nowMs)
      this.byKey.set(key, meter)
    }
    return meter
  }

  /** Removes pairs idle for idleMs and frees their host labels; at most once a minute. */
  private sweepIdle(nowMs: number): void {
    if (nowMs - this.lastSweepMs < 60_000) return
    this.lastSweepMs = nowMs
    const busyHosts = new Set<string>()
    for (const [key, meter] of this.byKey) {
      if (meter.host !== 'other' && nowMs - meter.lastUsedMs >= this.idleMs) {
        meter.remove()
        this.byKey.delete(key)
      } else {
        busyHosts.add(meter.host)
      }
    }
    for (const host of this.hosts.values()) if (!busyHosts.has(host)) this.hosts.release(host)
  }
}

/** Reverse-TCP tunnel series per agent and relay port (the port label folded like hosts). */
export class TcpMeters {
  private readonly connections: Counter<'agent' | 'port'>
  private readonly active: Gauge<'agent' | 'port'>
  private readonly bytes: Counter<'agent' | 'port' | 'direction'>
  private readonly ports = new LabelFolder(HOST_LABEL_CAP)

  constructor(registers: Registers, private readonly agents: LabelFolder) {
    this.connections = new Counter({ name: 'porchlight_tcp_connections_total', help: 'Visitor connections accepted on reverse-TCP tunnel ports', labelNames: ['agent', 'port'] as const, registers })
    this.active = new Gauge({ name: 'porchlight_tcp_connections_active', help: 'Visitor connections open on reverse-TCP tunnel ports', labelNames: ['agent', 'port'] as const, registers })
    this.bytes = new Counter({ name: 'porchlight_tcp_bytes_total', help: 'Reverse-TCP tunnel bytes (in: from visitors, out: to visitors)', labelNames: ['agent', 'port', 'direction'] as const, registers })
  }

  /** One accepted visitor connection; call the returned function once when it closes. */
  opened(agent: string, port: number): (bytesIn: number, bytesOut: number) => void {
    const labels = { agent: this.agents.fold(agent), port: this.ports.fold(String(port)) }
    this.connections.inc(labels)
    this.active.inc(labels)
    let done = false
    return (bytesIn, bytesOut) => {
      if (done) return
      done = true
      this.active.dec(labels)
      if (bytesIn > 0) this.bytes.inc({ ...labels, direction: 'in' }, bytesIn)
      if (bytesOut > 0) this.bytes.inc({ ...labels, direction: 'out' }, bytesOut)
    }
  }
}

/** Outbound forward series per agent (destinations are the agent's `outbound` list; not a label). */
export class ForwardMeters {
  private readonly connections: Counter<'agent' | 'result'>
  private readonly bytes: Counter<'agent' | 'direction'>

  constructor(registers: Registers, private readonly agents: LabelFolder) {
    this.connections = new Counter({ name: 'porchlight_forward_connections_total', help: 'Outbound forward streams by how their set-up ended', labelNames: ['agent', 'result'] as const, registers })
    this.bytes = new Counter({ name: 'porchlight_forward_bytes_total', help: 'Outbound forward bytes (in: from destinations, out: to destinations)', labelNames: ['agent', 'direction'] as const, registers })
  }

  result(agent: string, result: ForwardResult): void {
    this.connections.inc({ agent: this.agents.fold(agent), result })
  }

  closed(agent: string, bytesIn: number, bytesOut: number): void {
    const a = this.agents.fold(agent)
    if (bytesIn > 0) this.bytes.inc({ agent: a, direction: 'in' }, bytesIn)
    if (bytesOut > 0) this.bytes.inc({ agent: a, direction: 'out' }, bytesOut)
  }
}
