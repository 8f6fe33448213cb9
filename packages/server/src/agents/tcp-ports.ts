import type { PublishResult, TunnelSpec } from '@porchlight/shared/protocol'
import type { Logger } from '@porchlight/shared/log'
import type { RelayConfig } from '@porchlight/shared/config'
import { PorchlightError } from '@porchlight/shared/errors'
import { TcpTunnelListener, type TcpTunnelMeter } from '../visitors/tcp.js'
import { PickedPorts } from './picked-ports.js'
import { pickPort, portAllowed } from './port-policy.js'
import { reject, resultFromError } from './results.js'
import type { LeaseClaims } from './tunnel-table.js'
import type { SessionRef } from './registry.js'

type TcpSpec = Extract<TunnelSpec, { kind: 'tcp' }>

/** Other ports tried when a picked one turns out to be taken by another program. */
const PICK_ATTEMPTS = 5

interface PortEntry {
  agent: string
  instance: string
  session: SessionRef & { log: Logger }
  tunnelId: string
  listener: TcpTunnelListener
}

/**
 * Relay ports opened for reverse-TCP tunnels. A port belongs to one session (one process of one
 * agent); when that session ends its listeners close at once (the port is freed), and a
 * re-publish listens again. Another process of the same agent cannot take a port while its
 * owner's session is live (PL_ERR_POLICY_PORT_TAKEN); another agent never can.
 */
export class TcpPorts {
  private readonly byPort = new Map<number, PortEntry>()
  /** The port picked for each `tcp: 0` tunnel, kept across reconnects (and restarts, with `state:`). */
  private readonly picked: PickedPorts
  private readonly closingPorts = new Map<number, Promise<void>>()

  constructor(private readonly deps: {
    config: () => RelayConfig
    log: Logger
    reservedPorts: () => Set<number>
    stateDir: string | null
    tcpMeter?: TcpTunnelMeter
    /** Pings another process's session holding a wanted port; true once a stale one has been closed. */
    staleOwner?: (owner: Session) => Promise<boolean>
    /** Cluster leases for ports several agents' `tcp_ports` admit; null on a single relay. */
    leases?: () => LeaseClaims | null
    /** May this port's owner serve now (its lease current here)? Checked on every visitor connection. */
    fence?: (port: number, owner: { agent: string; instance: string }) => boolean
    /** A port taken over through its lease from another owner: tell that owner (PL_ERR_LEASE_LOST). */
    onTakenOver?: (owner: { agent: string; instance: string }, tunnelId: string, port: number) => void
  }) {
    this.picked = new PickedPorts(deps.stateDir, deps.log)
  }

  /** Makes `session`'s listeners exactly `specs`; returns one result per spec, in order. */
  async apply(session: Session, specs: TcpSpec[]): Promise<PublishResult[]> {
    const keep = new Set(specs.map((s) => s.remote_port || this.picked.get(session.agent, s.id)).filter((p): p is number => p !== undefined && p > 0))
    const closing: Array<Promise<void>> = []
    for (const [port, entry] of this.byPort) {
      const mine = entry.session === session || (entry.agent === session.agent && (entry.instance === session.instance || entry.session.isClosed))
      if (mine && !(keep.has(port) && !session.isClosed)) {
        closing.push(this.closeEntry(port, entry))
      }
    }
    await Promise.all(closing)
    if (session.isClosed) return specs.map((s) => reject(s.id, 'PL_ERR_MUX_CLOSED'))

    const results: PublishResult[] = []
    const served = new Set<number>()
    for (const spec of specs) {
      const result = await this.publishOne(session, spec)
      results.push(result)
      const port = result.ok ? portOfUrl(result.url) : null
      if (port !== null) served.add(port)
    }
    // A port the policy no longer allows (reload), or a picked port that moved, stops listening.
    const stale: Array<Promise<void>> = []
    for (const [port, entry] of this.byPort) {
      if (entry.session === session && !served.has(port)) {
        stale.push(this.closeEntry(port, entry))
      }
    }
    await Promise.all(stale)
    return results
  }

  /**
   * The port's lease passed from `owner` to another agent: stop listening for it. Returns the
   * tunnel id it served, or null when `owner` does not hold the port here.
   */
  withdraw(port: number, owner: { agent: string; instance: string }): string | null {
    const entry = this.byPort.get(port)
    if (entry === undefined || entry.agent !== owner.agent || entry.instance !== owner.instance) return null
    void this.closeEntry(port, entry)
    return entry.tunnelId
  }

  /** Contested ports this relay listens on for live sessions, as lease resources (renewed by the cluster). */
  leasedPorts(): Array<{ resource: string; agent: string; instance: string }> {
    return [...this.byPort].filter(([port, e]) => !e.session.isClosed && this.contested(port)).map(([port, e]) => ({ resource: `port:${port}`, agent: e.agent, instance: e.instance }))
  }

  /** More than one agent's `tcp_ports` admit `port`: config does not pin it to one agent. */
  private contested(port: number): boolean {
    let admitting = 0
    for (const policy of Object.values(this.deps.config().agents)) if (portAllowed(port, policy.tcp_ports ?? []) && ++admitting > 1) return true
    return false
  }

  /** The agents holding ports, for a reload to check. */
  agents(): Set<string> {
    return new Set([...this.byPort.values()].map((e) => e.agent))
  }

  /** Closes every listener of an agent (removed from the config). */
  async forgetAgent(agent: string): Promise<void> {
    const closing: Array<Promise<void>> = []
    for (const [port, entry] of this.byPort) {
      if (entry.agent === agent) {
        closing.push(this.closeEntry(port, entry))
      }
    }
    await Promise.all(closing)
  }

  /** Live ports for the admin API. */
  portsOf(agent: string): Array<{ port: number; tunnelId: string }> {
    return [...this.byPort].filter(([, e]) => e.agent === agent).map(([port, e]) => ({ port, tunnelId: e.tunnelId }))
  }

  async closeAll(): Promise<void> {
    const all = [...this.byPort.values()]
    this.byPort.clear()
    await Promise.all(all.map((e) => e.listener.close()))
  }

  private async publishOne(session: Session, spec: TcpSpec): Promise<PublishResult> {
    const config = this.deps.config()
    const policy = config.agents[session.agent]
    const ranges = policy?.tcp_ports ?? []
    const reserved = this.deps.reservedPorts()
    const port = spec.remote_port ?? 0
    if (port === 0) return this.publishPicked(session, spec, ranges, reserved)
    return this.listenOn(session, spec, port, ranges, reserved)
  }

  /**
   * `tcp: 0`: the port this tunnel had before when it is still allowed and free, else a free one
   * from the agent's ranges. A picked port another program holds is skipped and the next tried.
   */
  private async publishPicked(session: Session, spec: TcpSpec, ranges: RelayPortRanges, reserved: Set<number>): Promise<PublishResult> {
    const previous = this.picked.get(session.agent, spec.id)
    const holder = previous === undefined ? undefined : this.byPort.get(previous)
    const reusable = previous !== undefined && portAllowed(previous, ranges) && !reserved.has(previous) &&
      (holder === undefined || (holder.agent === session.agent && holder.tunnelId === spec.id && (holder.instance === session.instance || holder.session.isClosed)))
    const tried = new Set<number>()
    let result: PublishResult | null = null
    for (let attempt = 0; attempt < PICK_ATTEMPTS; attempt++) {
      const port = attempt === 0 && reusable ? previous : pickPort(ranges, (p) => this.byPort.has(p) || reserved.has(p) || tried.has(p))
      if (port === null) break
      tried.add(port)
      result = await this.listenOn(session, spec, port, ranges, reserved)
      if (result.ok) {
        this.picked.set(session.agent, spec.id, port)
        return result
      }
      if (result.code !== 'PL_ERR_POLICY_PORT_IN_USE') break
      session.log.info({ tunnel: spec.id, port }, 'picked port is taken by another program; trying another')
    }
    if (result === null) return reject(spec.id, 'PL_ERR_POLICY_PORT_DENIED', 'any', session.agent)
    this.picked.forget(session.agent, spec.id)
    return result
  }

  private async listenOn(session: Session, spec: TcpSpec, port: number, ranges: RelayPortRanges, reserved: Set<number>): Promise<PublishResult> {
    const config = this.deps.config()
    if (!portAllowed(port, ranges) || reserved.has(port)) return reject(spec.id, 'PL_ERR_POLICY_PORT_DENIED', port, session.agent)
    // A port several agents' policies admit is decided by the cluster's lease, not by who reached this relay first.
    const leases = this.deps.leases?.() ?? null
    if (leases !== null && this.contested(port)) {
      const lease = await leases.claim(`port:${port}`, session)
      if (!lease.ok) return lease.code === 'PL_ERR_LEASE_HELD' ? reject(spec.id, lease.code, `port ${port}`, lease.holder) : reject(spec.id, lease.code, 'lease', lease.reason)
      const held = this.byPort.get(port)
      if (held !== undefined && (held.agent !== session.agent || held.instance !== session.instance)) {
        await this.closeEntry(port, held)
        this.deps.onTakenOver?.(held, held.tunnelId, port)
      }
    }
    let existing = this.byPort.get(port)
    if (existing && existing.agent !== session.agent) return reject(spec.id, 'PL_ERR_POLICY_PORT_IN_USE', port)
    if (existing && existing.instance !== session.instance && !existing.session.isClosed) {
      // Another process of this agent holds the port: it keeps it unless its link is stale.
      if (!(await (this.deps.staleOwner?.(existing.session) ?? Promise.resolve(false)))) return reject(spec.id, 'PL_ERR_POLICY_PORT_TAKEN', port, session.agent)
    }
    // A listener still closing (its session just ended) must be gone before the port listens again.
    await this.closingPorts.get(port)
    existing = this.byPort.get(port)
    if (existing && (existing.agent !== session.agent || (existing.instance !== session.instance && !existing.session.isClosed))) return reject(spec.id, 'PL_ERR_POLICY_PORT_TAKEN', port, session.agent)
    if (existing) {
      // Same agent, same port (reload): keep listening, serve from this session, with the new allow_ips.
      try {
        existing.listener.setAllowIps(spec.allow_ips ?? [])
      } catch (err) {
        this.byPort.delete(port)
        await existing.listener.close()
        return resultFromError(spec.id, err)
      }
      existing.session = session
      existing.instance = session.instance
      existing.tunnelId = spec.id
      return { id: spec.id, ok: true, url: this.url(port) }
    }
    const entry: Partial<PortEntry> = { agent: session.agent, instance: session.instance, session, tunnelId: spec.id }
    const listener = new TcpTunnelListener({
      host: config.listen.public.host,
      port,
      tunnelId: spec.id,
      agent: session.agent,
      allowIps: spec.allow_ips ?? [],
      openStream: () => {
        const e = entry as PortEntry
        // Fenced: a port whose lease this relay no longer sees as its owner's serves nobody.
        if (this.deps.fence?.(port, e) === false) throw new PorchlightError('PL_ERR_HTTP_TUNNEL_OFFLINE')
        return e.session.openStream()
      },
      log: session.log.child({ tunnel: spec.id }),
      ...(this.deps.tcpMeter ? { meter: this.deps.tcpMeter } : {}),
    })
    entry.listener = listener
    try {
      await listener.listen()
    } catch (err) {
      return resultFromError(spec.id, err)
    }
    if (session.isClosed) {
      await listener.close()
      return reject(spec.id, 'PL_ERR_MUX_CLOSED')
    }
    this.byPort.set(port, entry as PortEntry)
    return { id: spec.id, ok: true, url: this.url(port) }
  }

  /** Stops a listener and remembers the closing, so a new listener on that port waits for it. */
  private closeEntry(port: number, entry: PortEntry): Promise<void> {
    if (this.byPort.get(port) === entry) this.byPort.delete(port)
    const closing: Promise<void> = entry.listener.close().finally(() => {
      if (this.closingPorts.get(port) === closing) this.closingPorts.delete(port)
    })
    this.closingPorts.set(port, closing)
    return closing
  }

  private url(port: number): string {
    return `tcp://${this.deps.config().domain}:${port}`
  }
}

type Session = SessionRef & { log: Logger }

function portOfUrl(url: string): number | null {
  const m = /:(\d+)$/.exec(url)
  return m ? Number(m[1]) : null
}

type RelayPortRanges = NonNullable<RelayConfig['agents'][string]>['tcp_ports']
