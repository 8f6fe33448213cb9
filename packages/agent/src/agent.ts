import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import { AGENT_DEFAULTS, formatAddress, type Address, type AgentConfig, type AgentTunnel } from '@porchlight/shared/config'
import { PorchlightError, codes } from '@porchlight/shared/errors'
import type { Logger } from '@porchlight/shared/log'
import type { PublishResult, TunnelSpec } from '@porchlight/shared/protocol'
import { HTTPS_READY_NOTICE } from '@porchlight/shared/protocol'
import { normalizeHost, serveInboundStream, type HttpTunnel, type RouteTable, type TcpTunnel } from './inbound.js'
import type { InspectServer } from './inspect.js'
import { ForwardSet } from './forwards.js'
import { dialRelay, type RelayLinkOptions } from './relay-link.js'
import type { LinkState } from './supervisor.js'
import { RelaySet, type LinkSummary } from './relay-set.js'
import { buildOriginAgents, destroyOriginAgents } from './tunnels/http.js'
import { localTarget, toTunnelSpecs } from './tunnels/specs.js'
import { AGENT_VERSION } from './version.js'
import { CaptureStore } from './inspector/capture.js'
import { TrafficMonitor, type TunnelTraffic } from './inspector/traffic.js'
import { canCaptureConnections } from './inspector/connection-capture.js'

export const DEFAULT_GRACE_MS = 10_000

export type TunnelState = 'pending' | 'ready' | 'rejected' | 'offline' | 'listening' | 'failed'

export interface TunnelStatus {
  id: string
  kind: AgentTunnel['kind']
  state: TunnelState
  /** Public URL (http/tcp, once accepted) or the local listen address (forward). */
  url: string | null
  /** Local side: origin URL, local TCP address, or the forward's destination. */
  to: string
  code?: string
  message?: string
  /** http tunnels: requests, by status class, bytes, since the agent started. */
  traffic?: TunnelTraffic
}

export interface AgentStatus {
  version: string
  connected: boolean
  state: LinkState
  relay: string
  agent: string | null
  session: string | null
  domain: string | null
  connectedAt: string | null
  reconnect: { attempt: number; delayMs: number | null; nextAttemptAt: string | null } | null
  lastError: { code: string; message: string } | null
  tunnels: TunnelStatus[]
  /** Relay-opened streams in flight (visitor requests, TCP connections). */
  streams: number
  inspect: string | null
  /** Every link: one, or one per relay of a cluster. */
  links: LinkSummary[]
}

/** Emitted once per accepted tunnel (again only when its URL changes). */
export interface TunnelReadyEvent {
  id: string
  kind: AgentTunnel['kind']
  url: string
  to: string
}

/** The status API is listening; `fallback` when the configured port was taken and a later one used. */
export interface InspectEvent {
  url: string
  wanted: string
  fallback: boolean
}

export interface TunnelRejectedEvent {
  id: string
  code: string
  message: string
}

export interface AgentDeps {
  log: Logger
  /** Injected by tests; default dials the relay over ws. */
  dial?: (options: RelayLinkOptions) => Promise<import('@porchlight/shared/mux').MuxSession>
  env?: NodeJS.ProcessEnv
  /** Quick modes: a busy inspect port is a warning, not a failure. */
  inspectOptional?: boolean
  keepAliveIntervalMs?: number
  keepAliveTimeoutMs?: number
  controlTimeoutMs?: number
  /**
   * http tunnel ids whose public name the relay picks (quick share without --name): a free random
   * name inside the agent's policy, kept by this process across reconnects.
   */
  relayPicksName?: ReadonlySet<string>
  /** Count and report requests even with the inspector off (the terminal view watches). */
  watchTraffic?: boolean
  /** First delay before publishing again after a retryable rejection (default 5 s, doubling to 60 s). */
  rejectedRetryMs?: number
}

export const REJECTED_RETRY_MS = 5_000
export const REJECTED_RETRY_MAX_MS = 60_000

/** Ports tried after the configured inspect port when it is taken (another agent process on this machine). */
export const INSPECT_PORT_TRIES = 10

/**
 * The agent as a library object (fastify's "build, don't listen"): buildAgent() binds nothing;
 * start() binds forward listeners and the status API and starts the connect loop. Events:
 * 'tunnel' (TunnelReadyEvent), 'rejected' (TunnelRejectedEvent), 'forward' (TunnelReadyEvent),
 * 'connected', 'disconnected', 'fatal' (PorchlightError: the process should exit 1).
 */
export class Agent extends EventEmitter {
  private config: AgentConfig
  private readonly log: Logger
  private readonly origins = buildOriginAgents()
  /** The links to the relay (one per member when the relay is in a cluster). */
  private readonly supervisor: RelaySet
  private readonly forwards: ForwardSet
  private readonly states = new Map<string, TunnelStatus>()
  /** Hostname the relay accepted, per http tunnel id (what inbound heads must name). */
  private readonly acceptedHosts = new Map<string, string>()
  private readonly printedUrls = new Map<string, string>()
  private readonly streams = new Set<Duplex>()
  private inspect: InspectServer | null = null
  /** Counters for every http exchange, and the inspector's buffer (when it records). */
  readonly traffic = new TrafficMonitor(null)
  private routesCache: RouteTable | null = null
  /** This process's instance id: the same for every reconnect, different for every process. */
  readonly instance = randomBytes(12).toString('base64url')
  /** Hostnames the relay picked for `relayPicksName` tunnels; asked for again on every publish. */
  private readonly pickedHosts = new Map<string, string>()
  private retryTimer: NodeJS.Timeout | null = null
  private retryDelayMs: number
  private started = false
  private stopped = false

  constructor(config: AgentConfig, private readonly deps: AgentDeps) {
    super()
    this.config = config
    this.log = deps.log
    this.traffic.store = buildCaptureStore(config)
    this.retryDelayMs = this.firstRetryMs()
    this.resetStates()
    this.supervisor = new RelaySet({
      log: deps.log,
      dial: deps.dial ?? dialRelay,
      link: () => ({ relay: this.config.relay, token: this.config.token, cert: this.config.cert, ca: this.config.ca, instance: this.instance, proxy: this.config.proxy ?? null }),
      tunnels: () => this.tunnelSpecs(),
      onPublished: (specs, results) => this.onPublished(specs, results),
      onStream: (stream) => this.onStream(stream),
      onDisconnected: () => this.onDisconnected(),
      agentVersion: AGENT_VERSION,
      ...(deps.env !== undefined ? { env: deps.env } : {}),
      ...(deps.keepAliveIntervalMs !== undefined ? { keepAliveIntervalMs: deps.keepAliveIntervalMs } : {}),
      ...(deps.keepAliveTimeoutMs !== undefined ? { keepAliveTimeoutMs: deps.keepAliveTimeoutMs } : {}),
      ...(deps.controlTimeoutMs !== undefined ? { controlTimeoutMs: deps.controlTimeoutMs } : {}),
    })
    this.forwards = new ForwardSet({
      log: deps.log,
      openStream: () => this.openForwardStream(),
      onListening: (tunnel, url) => {
        this.states.set(tunnel.id, { id: tunnel.id, kind: 'forward', state: 'listening', url, to: localTarget(tunnel) })
        this.emit('forward', { id: tunnel.id, kind: 'forward', url, to: localTarget(tunnel) } satisfies TunnelReadyEvent)
      },
      onFailed: (tunnel, err) => {
        this.states.set(tunnel.id, { id: tunnel.id, kind: 'forward', state: 'failed', url: null, to: localTarget(tunnel), message: err.message })
      },
    })
    this.supervisor.on('notice', (notice: { code: string; message: string }) => {
      if (notice.code === HTTPS_READY_NOTICE) this.onHttpsReady(notice.message)
      else if (notice.code === 'PL_ERR_LEASE_LOST') this.onLeaseLost(notice.message)
    })
    this.supervisor.on('connected', (welcome) => this.emit('connected', welcome))
    this.supervisor.on('disconnected', () => this.emit('disconnected'))
    this.supervisor.on('fatal', (err: PorchlightError) => this.emit('fatal', err))
  }

  /** Binds forward listeners and the status API, then starts the connect loop (it never throws for link trouble). */
  async start(): Promise<void> {
    if (this.started) throw new Error('agent already started')
    this.started = true
    try {
      for (const tunnel of this.config.tunnels) {
        if (tunnel.kind === 'forward') await this.forwards.start(tunnel)
      }
      await this.startInspect(this.config.inspect)
    } catch (err) {
      await this.closeListeners()
      throw err
    }
    this.supervisor.start()
  }

  /**
   * Graceful stop: forward listeners and the status API close, the relay gets GoAway, in-flight
   * streams get up to graceMs to finish, then the link closes.
   */
  async stop(graceMs = DEFAULT_GRACE_MS): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    if (this.retryTimer !== null) clearTimeout(this.retryTimer)
    // Forward listeners stop accepting at once; their live connections drain like relay streams.
    const forwards = this.forwards.close(graceMs)
    await this.inspect?.close()
    this.inspect = null
    await Promise.all([forwards, this.supervisor.stop(graceMs, (ms) => this.waitIdle(ms))])
    for (const stream of this.streams) stream.destroy()
    destroyOriginAgents(this.origins)
  }

  /**
   * Applies a new config (SIGHUP): link settings changed -> reconnect; otherwise re-publish the
   * new tunnel set while unaffected tunnels keep serving. Forward listeners and the status API
   * are restarted only where they changed.
   */
  async reload(next: AgentConfig): Promise<void> {
    const previous = this.config
    this.config = next
    this.routesCache = null
    if (captureKey(previous) !== captureKey(next)) this.traffic.store = buildCaptureStore(next)
    this.resetStates()
    for (const id of [...this.acceptedHosts.keys()]) {
      if (!next.tunnels.some((t) => t.id === id && t.kind === 'http')) this.acceptedHosts.delete(id)
    }
    if (!this.started || this.stopped) return
    await this.forwards.reload(next.tunnels)
    if (formatInspect(previous.inspect) !== formatInspect(next.inspect)) {
      await this.inspect?.close()
      this.inspect = null
      try {
        await this.startInspect(next.inspect)
      } catch (err) {
        this.log.error({ err }, 'cannot start the status API with the new config')
      }
    }
    const linkChanged = previous.relay !== next.relay || previous.token !== next.token || previous.cert !== next.cert || previous.ca !== next.ca || (previous.proxy ?? null) !== (next.proxy ?? null)
    if (linkChanged) {
      this.supervisor.reconnect('relay settings changed')
      return
    }
    try {
      await this.supervisor.republish()
    } catch (err) {
      this.log.warn({ err }, 're-publish after reload failed; the next connect publishes the new set')
    }
  }

  status(): AgentStatus {
    const link = this.supervisor.status()
    return {
      version: AGENT_VERSION,
      connected: link.state === 'connected',
      state: link.state,
      relay: link.relay,
      agent: link.agent,
      session: link.session,
      domain: link.domain,
      connectedAt: link.connectedAt === null ? null : new Date(link.connectedAt).toISOString(),
      reconnect: link.state === 'connected' ? null : {
        attempt: link.attempt,
        delayMs: link.nextDelayMs,
        nextAttemptAt: link.nextAttemptAt === null ? null : new Date(link.nextAttemptAt).toISOString(),
      },
      lastError: link.lastError,
      tunnels: this.config.tunnels.map((t) => ({
        ...(this.states.get(t.id) ?? initialState(t)),
        ...(t.kind === 'http' && this.watching() ? { traffic: this.traffic.traffic(t.id) } : {}),
      })),
      streams: this.streams.size,
      inspect: this.inspect?.boundAddress ? formatAddress(this.inspect.boundAddress) : null,
      links: link.links,
    }
  }

  /** A control request to the relay (link.create, link.list, link.revoke, status). */
  request(op: string, args: Record<string, unknown>): Promise<unknown> {
    return this.supervisor.request(op, args)
  }

  /** The status API address once bound (null when disabled or not started). */
  get inspectAddress(): Address | null {
    return this.inspect?.boundAddress ?? null
  }

  /** Where each forward listens once bound, by tunnel id. */
  forwardAddress(id: string): Address | null {
    return this.forwards.address(id)
  }

  /** What to publish: the config's tunnels; a relay-named one asks for its earlier name, else for any ("*"). */
  private tunnelSpecs(): TunnelSpec[] {
    const picks = this.deps.relayPicksName
    // Watched connection streams are read on the side (connection-capture.ts); without Node's
    // parser for that, watched exchanges keep the per-request streams the agent parses itself.
    const specs = toTunnelSpecs(this.config.tunnels, { connectionStreams: canCaptureConnections || !this.watching() })
    if (picks === undefined || picks.size === 0) return specs
    return specs.map((s) => (s.kind === 'http' && picks.has(s.id) ? { ...s, host: this.pickedHosts.get(s.id) ?? '*' } : s))
  }

  /** The inspector or the terminal view is up: exchanges are counted (and captured). */
  private watching(): boolean {
    return this.inspect !== null || this.deps.watchTraffic === true
  }

  private routes(): RouteTable {
    if (this.routesCache !== null) return this.routesCache
    const http = new Map<string, { tunnel: HttpTunnel; acceptedHost: string | null }>()
    const tcp = new Map<string, TcpTunnel>()
    for (const t of this.config.tunnels) {
      if (t.kind === 'http') http.set(t.id, { tunnel: t, acceptedHost: this.acceptedHosts.get(t.id) ?? null })
      else if (t.kind === 'tcp') tcp.set(t.id, t)
    }
    this.routesCache = { http, tcp }
    return this.routesCache
  }

  private onStream(stream: Duplex): void {
    if (this.stopped) {
      // Until the relay has our GoAway it may still open streams: a visitor gets 503, not 502.
      void serveInboundStream(stream, { routes: () => this.routes(), origins: this.origins, log: this.log, stopping: true }).catch(() => stream.destroy())
      return
    }
    this.track(stream)
    // Nobody watching (no inspector, no terminal view): no hook, nothing recorded per request.
    const traffic = this.watching() ? this.traffic : null
    void serveInboundStream(stream, { routes: () => this.routes(), origins: this.origins, log: this.log, traffic }).catch((err: unknown) => {
      this.log.error({ err }, 'inbound stream handler failed')
      stream.destroy()
    })
  }

  private onPublished(specs: TunnelSpec[], results: PublishResult[]): void {
    this.routesCache = null
    const published = new Set(specs.map((s) => s.id))
    for (const id of [...this.acceptedHosts.keys()]) if (!published.has(id)) this.acceptedHosts.delete(id)
    if (results.length !== specs.length) this.log.warn({ expected: specs.length, got: results.length }, 'relay answered publish with a different number of results')
    for (const result of results) {
      const tunnel = this.config.tunnels.find((t) => t.id === result.id)
      if (tunnel === undefined || !published.has(result.id)) continue
      if (result.ok) {
        if (tunnel.kind === 'http') {
          const host = hostOfUrl(result.url)
          if (host === null) this.acceptedHosts.delete(tunnel.id)
          else this.acceptedHosts.set(tunnel.id, host)
          if (host !== null && this.deps.relayPicksName?.has(tunnel.id) === true) this.pickedHosts.set(tunnel.id, host)
        }
        this.states.set(tunnel.id, { id: tunnel.id, kind: tunnel.kind, state: 'ready', url: result.url, to: localTarget(tunnel) })
        this.log.info({ tunnel: tunnel.id, url: result.url }, 'tunnel ready')
        if (this.printedUrls.get(tunnel.id) !== result.url) {
          this.printedUrls.set(tunnel.id, result.url)
          this.emit('tunnel', { id: tunnel.id, kind: tunnel.kind, url: result.url, to: localTarget(tunnel) } satisfies TunnelReadyEvent)
        }
      } else {
        this.acceptedHosts.delete(tunnel.id)
        this.printedUrls.delete(tunnel.id)
        const before = this.states.get(tunnel.id)
        this.states.set(tunnel.id, { id: tunnel.id, kind: tunnel.kind, state: 'rejected', url: null, to: localTarget(tunnel), code: result.code, message: result.message })
        // Every link (one per cluster member) and every retry answers: say it once until it changes.
        if (before?.state === 'rejected' && before.code === result.code) continue
        this.log.error({ tunnel: tunnel.id, code: result.code }, `tunnel rejected: ${result.message}`)
        this.emit('rejected', { id: tunnel.id, code: result.code, message: result.message } satisfies TunnelRejectedEvent)
      }
    }
    this.routesCache = null
    // A name or port held by another live process (or in use) may come free: try again later,
    // as the error table's `retry` says, with a doubling delay; refusals by policy are not retried.
    if (results.some((r) => !r.ok && (codes as Record<string, { retry: boolean } | undefined>)[r.code]?.retry === true)) this.scheduleRepublish()
    else this.retryDelayMs = this.firstRetryMs()
  }

  /**
   * The relay obtained a certificate for a published tunnel (`TUNNEL-ID URL`): the tunnel's URL
   * becomes the https:// one (status, a new `Forwarding` line) if it names the host we hold.
   */
  private onHttpsReady(message: string): void {
    const [id, url] = message.split(' ')
    if (id === undefined || url === undefined || !url.startsWith('https://')) return
    const state = this.states.get(id)
    const tunnel = this.config.tunnels.find((t) => t.id === id)
    if (tunnel === undefined || tunnel.kind !== 'http' || state?.state !== 'ready' || hostOfUrl(url) !== this.acceptedHosts.get(id)) return
    this.states.set(id, { ...state, url })
    this.log.info({ tunnel: id, url }, 'tunnel served over https')
    if (this.printedUrls.get(id) === url) return
    this.printedUrls.set(id, url)
    this.emit('tunnel', { id, kind: tunnel.kind, url, to: localTarget(tunnel) } satisfies TunnelReadyEvent)
  }

  /**
   * A cluster relay says the lease on a tunnel's contested hostname or port passed to another
   * agent (`TUNNEL-ID HOST` or `TUNNEL-ID tcp:PORT`): this process stops answering for it at once
   * (whatever link asks), says so once, and publishes again later in case it comes free.
   */
  private onLeaseLost(message: string): void {
    const [id, what] = message.split(' ')
    const tunnel = this.config.tunnels.find((t) => t.id === id)
    if (tunnel === undefined || what === undefined) return
    const port = /^tcp:(\d{1,5})$/.exec(what)?.[1]
    const state = this.states.get(tunnel.id)
    if (tunnel.kind === 'http' ? this.acceptedHosts.get(tunnel.id) !== what : port === undefined || state?.state !== 'ready' || !String(state.url).endsWith(`:${port}`)) return
    this.acceptedHosts.delete(tunnel.id)
    this.printedUrls.delete(tunnel.id)
    this.routesCache = null
    const text = codes.PL_ERR_LEASE_LOST.msg.replace('%s', port === undefined ? `host ${what}` : `port ${port}`).replace('%s', tunnel.id)
    this.states.set(tunnel.id, { id: tunnel.id, kind: tunnel.kind, state: 'rejected', url: null, to: localTarget(tunnel), code: 'PL_ERR_LEASE_LOST', message: text })
    this.log.error({ tunnel: tunnel.id, code: 'PL_ERR_LEASE_LOST' }, text)
    this.emit('rejected', { id: tunnel.id, code: 'PL_ERR_LEASE_LOST', message: text } satisfies TunnelRejectedEvent)
    this.scheduleRepublish()
  }

  /** deps.rejectedRetryMs, else PORCHLIGHT_REJECTED_RETRY_MS (tests shorten it), else 5 s. */
  private firstRetryMs(): number {
    return this.deps.rejectedRetryMs ?? this.retryFromEnv() ?? REJECTED_RETRY_MS
  }

  /** PORCHLIGHT_REJECTED_RETRY_MS is also the cap: tests want a steady, short retry. */
  private retryCapMs(): number {
    return this.retryFromEnv() ?? REJECTED_RETRY_MAX_MS
  }

  private retryFromEnv(): number | null {
    const raw = (this.deps.env ?? process.env)['PORCHLIGHT_REJECTED_RETRY_MS']
    return raw !== undefined && /^\d{2,9}$/.test(raw.trim()) ? Number(raw) : null
  }

  private scheduleRepublish(): void {
    if (this.retryTimer !== null || this.stopped) return
    const delayMs = this.retryDelayMs
    this.retryDelayMs = Math.min(delayMs * 2, this.retryCapMs())
    this.log.info({ delayMs }, 'publishing the rejected tunnels again later')
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null
      this.supervisor.republish().catch((err: unknown) => this.log.debug({ err }, 're-publish failed'))
    }, delayMs)
    this.retryTimer.unref()
  }

  private onDisconnected(): void {
    this.acceptedHosts.clear()
    this.routesCache = null
    for (const [id, state] of this.states) {
      if (state.kind !== 'forward' && state.state === 'ready') this.states.set(id, { ...state, state: 'offline' })
    }
  }

  private resetStates(): void {
    const previous = new Map(this.states)
    this.states.clear()
    for (const t of this.config.tunnels) {
      const old = previous.get(t.id)
      this.states.set(t.id, old !== undefined && old.kind === t.kind ? { ...old, to: localTarget(t) } : initialState(t))
    }
  }

  /** A stream for a local forward connection; throws while the link is down (the socket is then closed). */
  private openForwardStream(): Duplex {
    const session = this.supervisor.session
    if (session === null || this.stopped) throw new PorchlightError('PL_ERR_LINK_LOST', ['not connected to the relay'])
    const stream = session.open()
    this.track(stream)
    return stream
  }

  /**
   * Starts the status API; when its port is taken (another agent process on this machine) the
   * next free one of INSPECT_PORT_TRIES is used and the log says which.
   */
  private async startInspect(address: Address | null): Promise<void> {
    if (address === null) return
    // The status API and the inspector's page load only for an agent that serves them (`inspect: false` never does).
    const { InspectServer } = await import('./inspect.js')
    let lastErr: unknown = null
    const tries = address.port === 0 ? 1 : Math.min(INSPECT_PORT_TRIES, 65536 - address.port)
    for (let i = 0; i < tries; i++) {
      const candidate = { host: address.host, port: address.port === 0 ? 0 : address.port + i }
      const server = new InspectServer(candidate, {
        status: () => this.status(),
        request: (op, args) => this.request(op, args),
        log: this.log.child({ component: 'inspect' }),
        inspector: {
          monitor: this.traffic,
          replay: {
            origins: this.origins,
            tunnel: (id) => {
              const t = this.config.tunnels.find((x) => x.id === id)
              return t !== undefined && t.kind === 'http' ? t : null
            },
          },
        },
      })
      try {
        const bound = await server.listen()
        this.inspect = server
        this.emit('inspect', { url: `http://${formatAddress(bound)}/`, wanted: formatAddress(address), fallback: i > 0 } satisfies InspectEvent)
        if (i > 0) this.log.warn({ inspect: formatAddress(bound), wanted: formatAddress(address) }, `${formatAddress(address)} is in use (another agent?); status API on http://${formatAddress(bound)}/ instead`)
        this.log.info({ inspect: formatAddress(bound) }, 'status API listening')
        return
      } catch (err) {
        lastErr = err
        if (!isAddressInUse(err)) break
      }
    }
    if (this.deps.inspectOptional !== true) throw lastErr
    this.log.warn({ err: lastErr }, 'status API not started (is another agent running?)')
  }

  private async closeListeners(): Promise<void> {
    await this.forwards.close(0)
    await this.inspect?.close()
    this.inspect = null
  }

  private waitIdle(timeoutMs: number): Promise<void> {
    if (this.streams.size === 0) return Promise.resolve()
    this.log.info({ streams: this.streams.size, graceMs: timeoutMs }, 'draining in-flight streams')
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.off('idle', done)
        resolve()
      }
      const timer = setTimeout(done, timeoutMs)
      this.once('idle', done)
    })
  }

  /** In-flight streams (relay-opened and forward connections) are what a graceful stop waits for. */
  private track(stream: Duplex): void {
    this.streams.add(stream)
    stream.once('close', () => {
      this.streams.delete(stream)
      if (this.streams.size === 0) this.emit('idle')
    })
  }
}

/** buildAgent(config, { log }): an agent that binds nothing until start(). */
export function buildAgent(config: AgentConfig, deps: AgentDeps): Agent {
  return new Agent(config, deps)
}

function initialState(t: AgentTunnel): TunnelStatus {
  return { id: t.id, kind: t.kind, state: 'pending', url: null, to: localTarget(t) }
}

function hostOfUrl(url: string): string | null {
  try {
    return normalizeHost(new URL(url).hostname)
  } catch {
    return null
  }
}

function isAddressInUse(err: unknown): boolean {
  return (err as { cause?: { code?: string } } | null)?.cause?.code === 'EADDRINUSE'
}

/** The inspector's buffer, or null when it records nothing (inspector off, or `requests: 0`). */
function buildCaptureStore(config: AgentConfig): CaptureStore | null {
  const limits = config.inspect_capture ?? AGENT_DEFAULTS.inspect_capture
  return config.inspect === null || limits.requests === 0 ? null : new CaptureStore({ requests: limits.requests, bytes: limits.bytes })
}

function captureKey(config: AgentConfig): string {
  const limits = config.inspect_capture ?? AGENT_DEFAULTS.inspect_capture
  return config.inspect === null ? 'off' : `${limits.requests}/${limits.bytes}`
}

function formatInspect(a: Address | null): string {
  return a === null ? 'off' : formatAddress(a)
}
