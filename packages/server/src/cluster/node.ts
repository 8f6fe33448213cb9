import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Redis } from 'ioredis'
import type { RelayCluster } from '@porchlight/shared/config'
import type { Logger } from '@porchlight/shared/log'
import { CLUSTER_MEMBERS_NOTICE } from '@porchlight/shared/protocol'
import type { FailureLimiter, FailureLimitSpec } from '../access/failure-limit.js'
import type { AgentSession } from '../agents/session.js'
import type { Registry } from '../agents/registry.js'
import { sendPage, writeRawPage } from '../visitors/pages.js'
import { forwardToPeer, hasRequestBody, type ForwardDeps } from './forward.js'
import { forwardUpgrade } from './forward-upgrade.js'
import { loadClusterKeys, type ClusterKeys } from './keys.js'
import { Leases, type LeaseOwner } from './leases.js'
import { Membership, type Member } from './membership.js'
import { signPeerRequest } from './peer-auth.js'
import { FRESH_PATH } from './peer-server.js'
import { loadPeerTls, requestPeer, type PeerTls } from './peer-tls.js'
import { connectRedis } from './redis.js'
import { RevocationStream, type RevocationEvent } from './revocations.js'
import { sharedFailureLimiter } from './shared-limits.js'

/** Most bytes of a notice's message (protocol shortText); the member list is cut to fit. */
const NOTICE_MAX_CHARS = 1024
const FRESH_PROBE_TIMEOUT_MS = 500
const FRESH_PROBE_INTERVAL_MS = 250

type UpgradeHandler = (req: IncomingMessage, socket: Socket, head: Buffer) => void
type VisitorHandler = { onRequest: (req: IncomingMessage, res: ServerResponse) => void; onUpgrade: UpgradeHandler }
/** The 503 past max_staleness: the relay's own error page, so it carries x-porchlight-error like every other. */
const STALE_DETAIL = 'this relay lost the cluster\'s shared state; try again'
const STALE_HEADERS = { 'retry-after': '5', 'cache-control': 'no-store' }

export interface ClusterNodeDeps {
  cluster: RelayCluster
  log: Logger
  registry: Registry<AgentSession>
  /** How long a forwarded request's peer has to answer (limits.origin_timeout_ms). */
  originTimeoutMs: () => number
  /** Where the revocation stream position is kept (relay.yaml `state`), or null. */
  stateDir: string | null
  /** A revocation or share-link change from the stream (this member's own ones too: idempotent). */
  onEvent: (event: RevocationEvent) => void
  /** The lease on a contested hostname or port passed from `owner` to another agent: drop it here. */
  onLeaseLost: (resource: string, owner: LeaseOwner, holder: string | null) => void
  /** Contested TCP ports this relay listens on for live sessions (`port:<n>` resources), to renew. */
  leasedPorts: () => Array<{ resource: string } & LeaseOwner>
}

/**
 * This relay as a cluster member: its Redis clients, membership and readiness, the member list
 * agents hear, and forwarding a request or WebSocket upgrade to the peer that holds a link for
 * its host when this relay has none. Built only when relay.yaml has `cluster:`.
 */
export class ClusterNode {
  readonly keys: ClusterKeys
  readonly redis: Redis
  readonly membership: Membership
  readonly id: string
  readonly revocations: RevocationStream
  readonly leases: Leases
  /** cluster.peer_tls, read at start: listen.peer is https and peers are dialled with it. */
  readonly peerTls: PeerTls | null
  private readonly reader: Redis
  private draining = false
  /** False until the first heartbeat was tried: a relay that knows no peers yet is not ready. */
  private started = false
  private fresherPeer = false
  private probeTimer: NodeJS.Timeout | null = null
  private probing = false
  private readonly log: Logger

  constructor(private readonly deps: ClusterNodeDeps) {
    const c = deps.cluster
    this.id = c.id
    this.log = deps.log.child({ component: 'cluster', member: c.id })
    this.keys = loadClusterKeys(c.secret_file)
    this.peerTls = c.peer_tls ? loadPeerTls(c.peer_tls) : null
    this.redis = connectRedis(c.redis, this.log, { name: `${c.id}-control` })
    this.membership = new Membership({
      redis: this.redis,
      sealKey: this.keys.seal,
      self: { id: c.id, agents: c.advertise.agents, peer: c.advertise.peer },
      hosts: () => this.servedHosts(),
      log: this.log,
      prefix: 'porchlight:',
    })
    this.reader = connectRedis(c.redis, this.log, { name: `${c.id}-stream`, blocking: true })
    this.revocations = new RevocationStream({
      redis: this.redis,
      reader: this.reader,
      sealKey: this.keys.seal,
      self: c.id,
      key: 'porchlight:revocations',
      log: this.log,
      stateDir: deps.stateDir,
      apply: (event) => deps.onEvent(event),
    })
    this.leases = new Leases({
      redis: this.redis,
      tagKey: this.keys.leases,
      ttlMs: c.lease_ttl_ms,
      log: this.log,
      prefix: 'porchlight:lease:',
      held: () => [...this.leasedRoutes(), ...deps.leasedPorts()],
      onLost: (host, owner, holder) => deps.onLeaseLost(host, owner, holder),
    })
    // Visitors are served by a contested name's route only while its owner's lease is current here.
    deps.registry.fence = (route) => this.leases.serves(`host:${route.host}`, route)
    this.membership.on('members', () => {
      for (const s of deps.registry.allSessions()) this.tellMembers(s)
    })
  }

  async start(): Promise<void> {
    await this.membership.start()
    this.revocations.start()
    this.leases.start()
    this.started = true
    // Often, so /readyz fails soon after max_staleness; a no-op while Redis answers.
    this.probeTimer = setInterval(() => void this.probeFreshness(), FRESH_PROBE_INTERVAL_MS)
    this.probeTimer.unref()
  }

  /** SIGTERM: /readyz answers 503 from now on, then the listeners stay up drain_delay_ms. */
  async beginDrain(): Promise<void> {
    this.draining = true
    this.log.info({ delayMs: this.deps.cluster.drain_delay_ms }, 'draining: /readyz is 503 before the listeners close')
    await new Promise((r) => setTimeout(r, this.deps.cluster.drain_delay_ms))
  }

  async stop(): Promise<void> {
    if (this.probeTimer) clearInterval(this.probeTimer)
    this.leases.stop()
    await this.membership.stop()
    await this.revocations.stop()
    this.redis.disconnect()
  }

  /**
   * Puts a local revocation or share-link change on the stream for the other members. Without
   * Redis it fails loudly (an error line naming what did not reach the cluster); it has already
   * applied here.
   */
  publish(event: RevocationEvent): void {
    this.revocations.publish(event).catch((err: unknown) => {
      this.log.error({ code: 'PL_ERR_CLUSTER_REDIS', event: event.t, err: { message: (err as Error).message } }, 'cluster write failed: applied on this relay only; repeat it once redis is back')
    })
  }

  /** A failure limit counted across all members (Redis, with the per-relay table as insurance). */
  failureLimiter(name: string, spec: FailureLimitSpec): FailureLimiter {
    return sharedFailureLimiter(this.redis, this.keys.limits, name, spec)
  }

  get fresh(): boolean {
    return this.membership.stalenessMs <= this.deps.cluster.max_staleness_ms
  }

  /**
   * Ready unless draining, or cut from Redis past max_staleness while a peer still reaches it
   * (then visitors are better served there); with Redis down for all, everyone stays ready.
   */
  readiness(): { ready: boolean; reason: string } {
    if (this.draining) return { ready: false, reason: 'draining' }
    if (!this.started) return { ready: false, reason: 'starting' }
    if (!this.fresh && this.fresherPeer) return { ready: false, reason: `no redis for ${Math.round(this.membership.stalenessMs)} ms while a peer reaches it` }
    return { ready: true, reason: '' }
  }

  /** Sent after the welcome and whenever the member set changes: `self=ID ID=URL ...`. */
  tellMembers(session: AgentSession): void {
    const members = this.membership.members()
    let message = `self=${this.id}`
    for (const m of members) {
      const word = ` ${m.id}=${m.agents}`
      if (message.length + word.length > NOTICE_MAX_CHARS) break
      message += word
    }
    session.send({ type: 'notice', level: 'info', code: CLUSTER_MEMBERS_NOTICE, message })
  }

  /**
   * The public listeners' handler: a request (HTTP/1.x or HTTP/2) or a WebSocket upgrade for a
   * host this relay has no healthy link for goes once to the peer whose heartbeat lists one
   * (forward.ts, forward-upgrade.ts); anything else, and a peer that cannot be reached, is
   * answered here as without a cluster (503 when offline). The peer applies the site's access
   * rules with the visitor's address, as for a visitor of its own.
   */
  wrapVisitors<H extends VisitorHandler>(handler: H, proto: 'http' | 'https'): H {
    const forwardDeps = (): ForwardDeps => ({
      self: this.id,
      peerKey: this.keys.peer,
      log: this.log,
      responseTimeoutMs: this.deps.originTimeoutMs() + 5_000,
      tls: this.peerTls,
    })
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
      if (this.refuseStale(req, res)) return
      const peer = this.forwardTarget(req)
      if (peer === null) return handler.onRequest(req, res)
      const bodiless = !hasRequestBody(req)
      void forwardToPeer(req, res, peer, { visitor: req.socket.remoteAddress ?? '', proto }, forwardDeps()).then((sent) => {
        if (sent) return
        // Nothing reached the visitor yet: a request without a body is answered here (503
        // offline page); one whose body went to the peer can only be closed.
        if (bodiless && !res.headersSent) handler.onRequest(req, res)
        else res.destroy()
      })
    }
    const onUpgrade = (req: IncomingMessage, socket: Socket, head: Buffer): void => {
      socket.on('error', () => undefined)
      if (this.refuseStaleUpgrade(req, socket)) return
      const peer = this.forwardTarget(req)
      if (peer === null) return handler.onUpgrade(req, socket, head)
      void forwardUpgrade(req, socket, head, peer, { visitor: socket.remoteAddress ?? '', proto }, forwardDeps()).then((sent) => {
        // Unreachable: nothing was read from the visitor or written to it, so it is answered here.
        if (!sent) handler.onUpgrade(req, socket, head)
      })
    }
    return { ...handler, onRequest, onUpgrade }
  }

  /** The peer listener's handlers: local links only, with the same staleness rule. */
  guardStale(onRequest: (req: IncomingMessage, res: ServerResponse) => void): (req: IncomingMessage, res: ServerResponse) => void {
    return (req, res) => { if (!this.refuseStale(req, res)) onRequest(req, res) }
  }

  /** guardStale for the peer listener's upgrades. */
  guardStaleUpgrade(onUpgrade: UpgradeHandler): UpgradeHandler {
    return (req, socket, head) => { if (!this.refuseStaleUpgrade(req, socket)) onUpgrade(req, socket, head) }
  }

  /**
   * Past max_staleness a revocation made elsewhere may not have reached this relay: sites behind
   * share links or client certificates get 503 here (other sites keep serving). True when answered.
   */
  private refuseStale(req: IncomingMessage, res: ServerResponse): boolean {
    if (!this.staleForHost(req)) return false
    // HTTP/1.x: closed, so the visitor's next connection may reach a fresher relay. HTTP/2 has no
    // connection header (Node drops it with a process warning).
    const headers = req.httpVersionMajor === 2 ? STALE_HEADERS : { ...STALE_HEADERS, connection: 'close' }
    sendPage(res, 'PL_ERR_CLUSTER_REDIS', req.headers.accept, { detail: STALE_DETAIL, headers })
    req.resume()
    return true
  }

  private refuseStaleUpgrade(req: IncomingMessage, socket: Socket): boolean {
    if (!this.staleForHost(req)) return false
    writeRawPage(socket, 'PL_ERR_CLUSTER_REDIS', req.headers.accept, { detail: STALE_DETAIL, headers: STALE_HEADERS })
    return true
  }

  private staleForHost(req: IncomingMessage): boolean {
    if (this.fresh) return false
    const host = hostOf(req.headers.host)
    const access = host === null ? null : this.deps.registry.route(host)?.access ?? null
    return access !== null && (access.links === true || (access.client_certs !== undefined && access.client_certs !== false))
  }

  private forwardTarget(req: IncomingMessage): Member | null {
    const host = hostOf(req.headers.host)
    if (host === null) return null
    const route = this.deps.registry.servingRoute(host)
    if (route?.session && !route.session.isClosed && !route.session.suspect) return null
    // No link, or a suspect one: a peer that lists a healthy link serves it; else the local handler answers.
    return this.membership.peerServing(host)
  }

  /** Hostnames this relay serves over its own healthy links (listed in its heartbeat). */
  private servedHosts(): string[] {
    const hosts: string[] = []
    for (const s of this.deps.registry.allSessions()) {
      if (s.isClosed || s.suspect) continue
      for (const r of this.deps.registry.routesOfInstance(s.agent, s.instance)) if (r.session === s && this.leases.serves(`host:${r.host}`, r)) hosts.push(r.host)
    }
    return hosts
  }

  /** Leased hostnames this relay holds a live link of their owner for: what it renews. */
  private leasedRoutes(): Array<{ resource: string } & LeaseOwner> {
    const held: Array<{ resource: string } & LeaseOwner> = []
    for (const s of this.deps.registry.allSessions()) {
      if (s.isClosed) continue
      for (const r of this.deps.registry.routesOfInstance(s.agent, s.instance)) {
        if (r.session === s && this.leases.leased(`host:${r.host}`)) held.push({ resource: `host:${r.host}`, agent: r.agent, instance: r.instance })
      }
    }
    return held
  }

  /** While cut from Redis: does any peer still reach it? (Asked over listen.peer, never via Redis.) */
  private async probeFreshness(): Promise<void> {
    if (this.probing) return
    this.probing = true
    try {
      await this.probeOnce()
    } finally {
      this.probing = false
    }
  }

  private async probeOnce(): Promise<void> {
    if (this.fresh) {
      this.fresherPeer = false
      return
    }
    const answers = await Promise.all(this.membership.peers().map((p) => this.askFresh(p)))
    const fresher = answers.some((a) => a)
    if (fresher !== this.fresherPeer) this.log.warn({ code: 'PL_ERR_CLUSTER_REDIS', stalenessMs: this.membership.stalenessMs, fresherPeer: fresher }, fresher ? 'cut from redis while a peer reaches it: /readyz fails' : 'no peer reaches redis either: staying ready')
    this.fresherPeer = fresher
  }

  private askFresh(peer: Member): Promise<boolean> {
    return new Promise((resolve) => {
      const url = new URL(FRESH_PATH, peer.peer)
      const headers = Object.fromEntries(signPeerRequest(this.keys.peer, { from: this.id, visitor: '0.0.0.0', proto: 'http' }, { method: 'GET', host: url.host, url: FRESH_PATH }))
      let req
      try {
        req = requestPeer(url, { method: 'GET', path: FRESH_PATH, headers: { ...headers, host: url.host }, agent: false, timeout: FRESH_PROBE_TIMEOUT_MS }, this.peerTls)
      } catch {
        resolve(false)
        return
      }
      req.on('response', (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => { if (body.length < 256) body += d })
        res.on('end', () => {
          try {
            resolve(res.statusCode === 200 && (JSON.parse(body) as { fresh?: unknown }).fresh === true)
          } catch {
            resolve(false)
          }
        })
      })
      req.on('timeout', () => req.destroy())
      req.on('error', () => resolve(false))
      req.end()
    })
  }
}

function hostOf(header: string | undefined): string | null {
  if (header === undefined || header.length > 300) return null
  const name = header.startsWith('[') ? header.slice(0, header.indexOf(']') + 1) : header.replace(/:\d+$/, '')
  return name.toLowerCase().replace(/\.$/, '')
}
