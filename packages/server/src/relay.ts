import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo, Server } from 'node:net'
import https from 'node:https'
import type tls from 'node:tls'
import { constants } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { formatAddress, type Address, type RelayConfig } from '@porchlight/shared/config'
import { PorchlightError } from '@porchlight/shared/errors'
import { HTTPS_READY_NOTICE } from '@porchlight/shared/protocol'
import type { Logger } from '@porchlight/shared/log'
import { AgentSession } from './agents/session.js'
import { TcpPorts } from './agents/tcp-ports.js'
import { TunnelTable } from './agents/tunnel-table.js'
import { createAgentEndpoint, createAgentListener, type AuthenticatedAgent } from './agents/upgrade.js'
import { withSharedAgentsEndpoint } from './agents/shared-endpoint.js'
import type { AuthFailureReason } from './admin/metrics.js'
import { buildAgentTlsContextOptions, watchRevocations } from './agents/tls.js'
import { parseOutboundRules, type OutboundRule } from './agents/outbound-policy.js'
import { expandOwnAddresses, handleForwardStream } from './visitors/outbound.js'
import { createVisitorHandler, createVisitorServer, serveVisitors, visitorServerOptions } from './visitors/http.js'
import { createVisitorH2Server, routeH2Connections } from './visitors/h2.js'
import { proxyProtocolFront } from './visitors/proxy-v2.js'
import { limitConnectionsPerIp } from './visitors/connection-limit.js'
import { RefusalWatch } from './visitors/refusals.js'
import { loadSniCertificates } from './visitors/tls-certs.js'
import { LazyAdminServer } from './admin/lazy-server.js'
import { createMetrics } from './admin/metrics.js'
import { Activity } from './admin/activity.js'
import { LinkStore } from './access/links.js'
import { localFailureLimiter } from './access/failure-limit.js'
import { loadRevokedSerials } from '@porchlight/shared/pki/runtime'
import type { RelayContext } from './context.js'
import { AcmeManager } from './acme/manager.js'
import { AcmeSharedState } from './acme/shared-state.js'
import { directoryId } from './acme/store.js'
import { ACME_TLS_ALPN } from './acme/challenges.js'
import type { ClusterNode } from './cluster/node.js'
import { createPeerServer } from './cluster/peer-server.js'

export interface RelayAddresses {
  public: string
  public_tls: string | null
  agents: string
  admin: string | null
  /** listen.peer (cluster members only). */
  peer: string | null
}

export interface Relay {
  ctx: RelayContext
  listen(): Promise<RelayAddresses>
  /** Stops accepting, tells agents to go away, waits up to graceMs for in-flight work. */
  close(graceMs?: number): Promise<void>
  /**
   * Applies a new config: policies change at once for live sessions (withdrawn hosts and ports stop
   * serving), sessions whose agent lost access are closed and a removed agent's names released.
   * Resolves once live sessions have been re-published under the new policy.
   */
  reload(config: RelayConfig): Promise<void>
}

export interface RelayDeps {
  log: Logger
  /** cluster/node.js's class; only a relay with `cluster:` loads it (loadClusterNode). */
  ClusterNode?: typeof ClusterNode
}

/**
 * The cluster code for a relay with `cluster:`, else nothing: a single relay never loads ioredis
 * (about 40 modules, 4.8 MiB of idle RSS).
 */
export async function loadClusterNode(config: RelayConfig): Promise<Pick<RelayDeps, 'ClusterNode'>> {
  return config.cluster ? { ClusterNode: (await import('./cluster/node.js')).ClusterNode } : {}
}

/**
 * Builds the relay without binding anything (fastify's "build, don't listen"): bin.ts and tests
 * call listen(); tests can build many relays in one process.
 */
export function buildRelay(initial: RelayConfig, deps: RelayDeps): Relay {
  let config = initial
  const log = deps.log
  const reservedHosts = new Set(['localhost', config.domain])
  const tcpPorts: TcpPorts = new TcpPorts({
    config: () => config,
    log,
    tcpMeter: { opened: (agent, port) => metrics.tcp.opened(agent, port), limitRefused: () => metrics.limitRefused('tcp_max_connections') },
    reservedPorts: () => new Set(Object.values(bound).map((a) => a.port)),
    stateDir: config.state,
    staleOwner: (owner): Promise<boolean> => tunnels.replaceIfStale(owner as AgentSession),
    leases: () => cluster?.leases ?? null,
    fence: (port, owner) => cluster?.leases.serves(`port:${port}`, owner) ?? true,
    onTakenOver: (owner, tunnelId, port) => tunnels.tellLeaseLost(owner, tunnelId, `port ${port}`, `tcp:${port}`),
  })
  const tunnels: TunnelTable<AgentSession> = new TunnelTable<AgentSession>({
    config: () => config,
    log,
    tcpPorts,
    reservedHosts: () => reservedHosts,
    publicUrl: (host) => ctx.publicUrl(host),
    onHostPublished: (host) => acme?.want(host, 'published'),
    leases: () => cluster?.leases ?? null,
  })
  const registry = tunnels.registry
  // `cluster:`: membership in Redis, the member list for agents, forwarding to peers.
  if (config.cluster && deps.ClusterNode === undefined) throw new Error('buildRelay: cluster: needs deps.ClusterNode (see loadClusterNode)')
  const cluster = config.cluster && deps.ClusterNode ? new deps.ClusterNode({
    cluster: config.cluster,
    log,
    registry,
    originTimeoutMs: () => config.limits.origin_timeout_ms,
    stateDir: config.state,
    onEvent: (event) => {
      if (event.t === 'cert.revoke') onClusterCertRevoked(event.serial)
      else if (event.t === 'acme.cert') acme?.onClusterCertificate(event.name, event.serial)
      // Only the kinds this version knows: a newer member's entries are skipped, not misread.
      else if (event.t === 'link.create' || event.t === 'link.revoke') ctx.links.apply(event)
    },
    onLeaseLost: (resource, owner, holder) => tunnels.withdrawLeased(resource, owner, holder),
    leasedPorts: () => tcpPorts.leasedPorts(),
  }) : null
  let closing = false
  // `outbound` rules parsed once per config (at start and on reload), not on every stream.
  let outboundRules = parseAllOutbound(config)
  const metrics = createMetrics({ sessions: () => registry.allSessions() })
  const bound: { public?: Address; public_tls?: Address; agents?: Address; admin?: Address; peer?: Address } = {}
  const pkiDir = config.pki
  // Fails closed: a revocation list that exists but cannot be read stops the start (PL_ERR_TLS_FILE).
  let revoked = pkiDir ? loadRevokedSerials(pkiDir) : new Set<string>()

  const ctx: RelayContext = {
    get config() { return config },
    log,
    registry,
    tunnels,
    tcpPorts,
    forwards: {
      handle: async (session, stream, head) => {
        // The current config's rules on every stream open (no per-session caching).
        const rules = outboundRules.get(session.agent) ?? []
        await handleForwardStream(stream, head, { agent: session.agent, rules, log: session.log, relayOwnAddresses: expandOwnAddresses(ctx.ownAddresses()), meters: metrics.forwards })
      },
    },
    // Cluster members share the signing key, so a link minted on one verifies on every member.
    links: new LinkStore({ stateDir: config.state, ...(cluster ? { secret: cluster.keys.links } : {}) }),
    cluster,
    failureLimiter: cluster ? (name, spec) => cluster.failureLimiter(name, spec) : localFailureLimiter,
    readiness: () => cluster?.readiness() ?? (closing ? { ready: false, reason: 'draining' } : { ready: true, reason: '' }),
    metrics,
    activity: new Activity(),
    reservedHosts,
    publicUrl(host: string): string {
      // With ACME, https:// once a certificate covers the name (until then, a fallback
      // certificate would not match it); without, whenever the HTTPS listener runs.
      const httpsReady = acme === null || publicTls?.covers(host) === true || acme.covers(host)
      if (config.listen.public_tls && bound.public_tls && httpsReady) return `https://${host}${portSuffix(bound.public_tls.port, 443)}/`
      return `http://${host}${portSuffix(bound.public?.port ?? config.listen.public.port, 80)}/`
    },
    revokedSerials: () => revoked,
    ownAddresses(): Set<string> {
      return new Set(Object.values(bound).map((a) => a.host))
    },
  }

  // Local share-link changes go to the other members over the revocation stream.
  if (cluster) ctx.links.onChange = (event) => cluster.publish(event)

  const acmeSettings = config.acme
  const acme: AcmeManager | null = acmeSettings && config.state ? new AcmeManager({
    acme: () => config.acme ?? acmeSettings,
    stateDir: config.state,
    publicHost: () => config.listen.public.host,
    staticCovers: (name) => publicTls?.covers(name) === true,
    isPublished: (name) => registry.route(name) !== undefined,
    onReady: (name) => announceHttps(name),
    // `cluster:`: account, certificates, challenge answers and one order lock per name in Redis.
    shared: cluster ? new AcmeSharedState({ redis: cluster.redis, key: cluster.keys.acme, prefix: `porchlight:acme:${directoryId(acmeSettings.directory)}:`, member: cluster.id }) : null,
    announce: (name, serial) => cluster?.publish({ t: 'acme.cert', name, serial }),
    // Visitor client certificates are checked against the relay CA on ACME certificates too.
    contextOptions: { ...(config.pki ? { ca: readFile(path.join(config.pki, 'ca.crt')) } : {}), ...sharedAgentsTlsOptions(config) },
    log,
    metrics: metrics.registry,
  }) : null

  /** A new certificate: each live session publishing a name it covers hears the https:// URL. */
  function announceHttps(name: string): void {
    const covered = (host: string): boolean => host === name || (name.startsWith('*.') && host.slice(host.indexOf('.')) === name.slice(1))
    for (const s of registry.allSessions()) {
      for (const r of s.results) {
        if (!r.ok || r.url === undefined || !r.url.startsWith('http:')) continue
        const host = new URL(r.url).hostname
        if (!covered(host)) continue
        r.url = ctx.publicUrl(host)
        if (r.url.startsWith('https:')) s.send({ type: 'notice', level: 'info', code: HTTPS_READY_NOTICE, message: `${r.id} ${r.url}` })
      }
    }
  }

  // One basic-auth limiter for both listeners, so HTTP and HTTPS share the 10-guesses budget.
  const basicLimiter = ctx.failureLimiter('basic', { limit: 10, windowMs: 5 * 60_000, maxKeys: 10_000 })
  const visitorHandler = createVisitorHandler(ctx, {
    https: false,
    listenerPorts: () => listenerPorts(),
    basicLimiter,
    ...(acme ? { beforeRouting: (req: IncomingMessage, res: ServerResponse) => acme.answerHttp(req, res) } : {}),
  })
  const publicServer = createVisitorServer(ctx, cluster ? cluster.wrapVisitors(visitorHandler, 'http') : visitorHandler)
  const refusals = new RefusalWatch(log.child({ component: 'limits' }), metrics.refusals, undefined, () => metrics.limitRefused('max_connections_per_ip'))
  limitConnectionsPerIp(publicServer, config.limits.max_connections_per_ip, { listener: 'public', answer: true, watch: refusals })
  const agentCallbacks = {
    config: () => config,
    log,
    revokedSerials: () => revoked,
    onAgent: (a: AuthenticatedAgent) => attachAgent(a),
    // One link per agent process and relay: another link id of a process with a live session is refused.
    linkConflict: (agent: string, instance: string, link: string) => {
      const s = registry.session(agent, instance)
      return s !== undefined && !s.isClosed && s.link !== link
    },
    failureLimiter: ctx.failureLimiter,
    onAuthFailure: (reason: AuthFailureReason) => {
      metrics.authFailed(reason)
      if (reason === 'rate_limited') metrics.limitRefused('agent_auth_failures')
    },
  }
  // `listen.agents: shared`: no listener of its own; the endpoint rides on the visitors' HTTPS
  // listener (its client-certificate request from the relay CA is what require_cert checks).
  const sharedAgents = config.listen.agents === 'shared'
  let publicTls: PublicTlsServer | null = null
  const httpsVisitors = config.listen.public_tls || cluster ? createVisitorHandler(ctx, { https: true, listenerPorts: () => listenerPorts(), basicLimiter }) : null
  if (config.listen.public_tls && httpsVisitors) {
    const visitors = cluster ? cluster.wrapVisitors(httpsVisitors, 'https') : httpsVisitors
    const tlsHandler = sharedAgents
      ? withSharedAgentsEndpoint(visitors, createAgentEndpoint({ ...agentCallbacks, clientCerts: true }), { domain: () => config.domain, listenerPorts: () => listenerPorts() })
      : visitors
    publicTls = createPublicTlsServer(config, tlsHandler, acme, log)
    limitConnectionsPerIp(publicTls.server, config.limits.max_connections_per_ip, { listener: 'public_tls', answer: true, watch: refusals })
  }
  const publicTlsServer = publicTls?.server ?? null
  // listen.public_proxy_protocol: the public listeners bind a front that reads HAProxy's PROXY v2 header first.
  const front = (server: Server): Server => config.listen.public_proxy_protocol
    ? proxyProtocolFront(server, { trustProxy: () => config.trust_proxy, timeoutMs: () => config.limits.headers_timeout_ms, log: log.child({ component: 'visitors' }) })
    : server
  const publicListener = front(publicServer)
  const publicTlsListener = publicTlsServer ? front(publicTlsServer) : null

  const tlsOptions = config.tls && !sharedAgents ? buildAgentTlsContextOptions({ cert: config.tls.cert, key: config.tls.key, caFile: pkiDir ? path.join(pkiDir, 'ca.crt') : null }) : null
  const agentServer = sharedAgents ? null : createAgentListener({ ...agentCallbacks, tlsOptions })
  // Pre-auth cap on the agents listener (SECURITY A10): a few agents per address is plenty.
  if (agentServer) limitConnectionsPerIp(agentServer, 32, { listener: 'agents', answer: false, watch: refusals })
  let stopWatching: (() => void) | null = null
  // Forwarded requests and upgrades are served by the unwrapped handlers: over local links only, never forwarded again.
  const peerServer = cluster && config.listen.peer ? createPeerServer({
    self: cluster.id,
    peerKey: cluster.keys.peer,
    log: log.child({ component: 'cluster' }),
    readiness: () => ctx.readiness(),
    fresh: () => cluster.fresh,
    visitors: { http: cluster.guardStale(visitorHandler.onRequest), https: cluster.guardStale((httpsVisitors ?? visitorHandler).onRequest) },
    upgrades: { http: cluster.guardStaleUpgrade(visitorHandler.onUpgrade), https: cluster.guardStaleUpgrade((httpsVisitors ?? visitorHandler).onUpgrade) },
    tls: cluster.peerTls,
  }) : null

  function attachAgent(a: AuthenticatedAgent): void {
    const session = new AgentSession(a.agent, a.ws, ctx, { certSerial: a.certSerial, remoteAddress: a.remoteAddress, instance: a.instance, link: a.link, tokenSha256: a.tokenSha256 })
    const previous = tunnels.attach(session)
    // The same process reconnecting (laptop woke up, network changed): its old link is stale, so
    // the new one wins at once. Other processes of this agent keep their own sessions.
    previous?.close(new PorchlightError('PL_ERR_LINK_REPLACED'), { code: 'PL_ERR_LINK_REPLACED', message: 'replaced by a newer connection' })
    metrics.sessions.inc()
    const key = `${a.agent}\n${a.instance}`
    if (seenInstances.has(key)) metrics.reconnected(a.agent)
    else if (seenInstances.size < 10_000) seenInstances.add(key)
  }
  /** Agent instances that had a session in this process (for the reconnect count; bounded). */
  const seenInstances = new Set<string>()

  // A broken revocation list keeps the last good set (fail closed); said once per distinct problem.
  let revocationProblem: string | null = null
  function onRevocationError(err: unknown): void {
    metrics.revocationErrors.inc()
    const message = (err as Error).message
    if (message === revocationProblem) return
    revocationProblem = message
    log.error({ code: (err as { code?: string }).code ?? 'PL_ERR_TLS_FILE', err: { message } }, 'revocation list unreadable; keeping the last good one')
  }

  /** Serials revoked on other members (merged into every local list that is read). */
  const clusterRevoked = new Set<string>()
  function onClusterCertRevoked(serial: string): void {
    if (clusterRevoked.has(serial) || clusterRevoked.size >= 100_000) return
    clusterRevoked.add(serial)
    if (!revoked.has(serial)) closeRevoked(new Set([...revoked, serial]))
  }

  function onRevocations(serials: Set<string>): void {
    if (revocationProblem !== null) log.info({ revoked: serials.size }, 'revocation list readable again')
    revocationProblem = null
    // A serial new in this relay's list is told to the other members.
    if (cluster) for (const serial of serials) if (!revoked.has(serial) && !clusterRevoked.has(serial)) cluster.publish({ t: 'cert.revoke', serial })
    closeRevoked(clusterRevoked.size === 0 ? serials : new Set([...serials, ...clusterRevoked]))
  }

  function closeRevoked(serials: Set<string>): void {
    revoked = serials
    for (const s of registry.allSessions()) {
      if (s.certSerial && serials.has(s.certSerial)) {
        log.warn({ agent: s.agent, serial: s.certSerial }, 'certificate revoked; closing agent session')
        s.close(new PorchlightError('PL_ERR_AUTH_CERT_REJECTED', ['certificate revoked']), { code: 'PL_ERR_AUTH_CERT_REJECTED', message: 'certificate revoked' })
      }
    }
  }

  function listenerPorts(): Set<number> {
    const ports = new Set([80, 443])
    if (bound.public) ports.add(bound.public.port)
    if (bound.public_tls) ports.add(bound.public_tls.port)
    return ports
  }

  let admin: LazyAdminServer | null = null

  return {
    ctx,
    async listen(): Promise<RelayAddresses> {
      const started: Array<{ close(): unknown }> = []
      try {
        bound.public = await listenOn(publicListener, config.listen.public, 'public')
        started.push(publicListener)
        if (publicTlsListener && config.listen.public_tls) {
          bound.public_tls = await listenOn(publicTlsListener, config.listen.public_tls.address, 'public_tls')
          started.push(publicTlsListener)
        }
        if (agentServer && config.listen.agents !== 'shared') {
          bound.agents = await listenOn(agentServer, config.listen.agents, 'agents')
          started.push(agentServer)
        }
        if (config.listen.admin) {
          // Bound now; fastify and the dashboard load at its first request.
          admin = new LazyAdminServer(ctx)
          bound.admin = await listenOn(admin.server, config.listen.admin, 'admin')
          started.push(admin.server)
        }
        if (peerServer && config.listen.peer) {
          bound.peer = await listenOn(peerServer, config.listen.peer, 'peer')
          started.push(peerServer)
        }
      } catch (err) {
        // Nothing stays half-started: close what did bind before reporting.
        for (const s of started) s.close()
        throw err
      }
      // The first heartbeat is written (or has failed, bounded) before agents hear the member list.
      await cluster?.start()
      if (pkiDir) stopWatching = watchRevocations(pkiDir, onRevocations, 1000, onRevocationError)
      // Orders start once the listeners the CA connects to are up.
      acme?.start()
      return {
        public: formatAddress(bound.public),
        public_tls: bound.public_tls ? formatAddress(bound.public_tls) : null,
        // Shared: agents dial the visitors' HTTPS address (at AGENTS_SHARED_PATH on the domain).
        agents: formatAddress(bound.agents ?? bound.public_tls!),
        admin: bound.admin ? formatAddress(bound.admin) : null,
        peer: bound.peer ? formatAddress(bound.peer) : null,
      }
    },
    async close(graceMs = 10_000): Promise<void> {
      closing = true
      // A member first fails /readyz and keeps serving while the balancer moves new connections away.
      await cluster?.beginDrain()
      stopWatching?.()
      acme?.close()
      refusals.flush()
      publicListener.close()
      publicTlsListener?.close()
      if (publicListener !== publicServer) publicServer.close()
      if (publicTlsListener !== publicTlsServer) publicTlsServer?.close()
      agentServer?.close()
      for (const s of registry.allSessions()) s.mux.goAway()
      const deadline = Date.now() + graceMs
      while (Date.now() < deadline && registry.allSessions().some((s) => s.mux.streamCount > 1)) {
        await new Promise((r) => setTimeout(r, 100))
      }
      for (const s of registry.allSessions()) s.close()
      await tcpPorts.closeAll()
      publicServer.closeAllConnections()
      publicTlsServer?.closeAllConnections()
      await cluster?.stop()
      peerServer?.closeAllConnections()
      peerServer?.close()
      await admin?.close()
    },
    async reload(next: RelayConfig): Promise<void> {
      // Certificate rotation (e.g. after a renewal): every file is read and checked first, so a
      // bad one throws PL_ERR_TLS_FILE and the old contexts and the old config stay in force. New
      // handshakes use the new files; live connections and sessions stay up.
      const agentTls = next.tls && agentServer && 'setSecureContext' in agentServer
        ? buildAgentTlsContextOptions({ cert: next.tls.cert, key: next.tls.key, caFile: next.pki ? path.join(next.pki, 'ca.crt') : null })
        : null
      const visitorTls = publicTls && next.listen.public_tls ? loadPublicCertificates(next) : null
      if (agentTls) (agentServer as https.Server).setSecureContext(agentTls)
      if (visitorTls) publicTls?.rotate(visitorTls)
      config = next
      outboundRules = parseAllOutbound(next)
      await tunnels.reload(next)
      // acme.names added by the reload are ordered now; challenge, names, dns_hook and the limits
      // apply at once. Turning ACME on or off and its directory (account, files) are read at start.
      if (acme) acme.start()
      const restartNeeded = (acme === null) !== (next.acme === null || next.state === null) ||
        (next.acme !== null && acmeSettings !== null && (next.acme.directory !== acmeSettings.directory || next.acme.directory_ca !== acmeSettings.directory_ca))
      if (restartNeeded) log.warn('acme: turning ACME on or off, or a new directory or directory_ca, takes effect at the next restart')
      if (JSON.stringify(next.cluster) !== JSON.stringify(initial.cluster) || JSON.stringify(next.listen.peer) !== JSON.stringify(initial.listen.peer) || next.listen.public_proxy_protocol !== initial.listen.public_proxy_protocol) {
        log.warn('cluster, listen.peer and listen.public_proxy_protocol take effect at the next restart')
      }
      log.info('config reloaded')
    },
  }
}

/** Each agent's `outbound` list as rules. The loader validated them; an entry that still fails to parse allows nothing. */
function parseAllOutbound(config: RelayConfig): Map<string, OutboundRule[]> {
  const rules = new Map<string, OutboundRule[]>()
  for (const [agent, policy] of Object.entries(config.agents)) {
    try {
      rules.set(agent, parseOutboundRules(policy.outbound))
    } catch {
      rules.set(agent, [])
    }
  }
  return rules
}

function portSuffix(port: number, defaultPort: number): string {
  return port === defaultPort ? '' : `:${port}`
}

interface PublicTlsServer {
  server: https.Server
  /** New certificates for new handshakes (SIGHUP after a renewal). */
  rotate(certs: PublicCertificates): void
  /** True when a configured certificate (not the fallback) covers the name. */
  covers(name: string): boolean
}

type PublicCertificates = ReturnType<typeof loadPublicCertificates>

/**
 * The visitors' certificates, each per-name context trusting the relay CA for visitor certificates;
 * `certs` is null when none are configured (ACME provides them all).
 */
function loadPublicCertificates(config: RelayConfig): { certs: ReturnType<typeof loadSniCertificates> | null; ca: { ca?: Buffer; secureOptions?: number } } {
  const caFile = config.pki ? path.join(config.pki, 'ca.crt') : null
  const ca = { ...(caFile ? { ca: readFile(caFile) } : {}), ...sharedAgentsTlsOptions(config) }
  const files = config.listen.public_tls!.certs
  return { certs: files.length === 0 && config.acme ? null : loadSniCertificates(files, ca), ca }
}

/**
 * With `listen.agents: shared` agents authenticate on the visitors' listener too: no resumption, so
 * OpenSSL verifies every connection's certificate afresh (SECURITY.md rule 4), as on the dedicated
 * listener. For every context (default, per-name, ACME) and across rotations.
 */
function sharedAgentsTlsOptions(config: RelayConfig): { secureOptions?: number } {
  return config.listen.agents === 'shared' ? { secureOptions: constants.SSL_OP_NO_TICKET } : {}
}

/** Set by the ALPN callback on a handshake that offers `acme-tls/1` for a name with a challenge open. */
const acmeValidation = Symbol('acmeValidation')

function createPublicTlsServer(config: RelayConfig, handler: ReturnType<typeof createVisitorHandler>, acme: AcmeManager | null, log: Logger): PublicTlsServer {
  let current = loadPublicCertificates(config)
  const { certs, ca } = current
  const server = https.createServer({
    ...(certs ? { cert: certs.cert, key: certs.key } : {}),
    // SNI picks the certificate from whatever set is current (rotate() swaps it): a TLS-ALPN-01
    // challenge certificate, a configured one covering the name, an ACME one, else the fallback.
    // A name with none of them fails the handshake; no name a visitor sends starts an order.
    SNICallback(this: tls.TLSSocket | undefined, servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void): void {
      const socket = this as (tls.TLSSocket & { [acmeValidation]?: boolean }) | undefined
      if (acme && socket?.[acmeValidation] === true) {
        // This relay's own challenge, or (cluster) one a member stored in Redis.
        void acme.alpnContext(servername.toLowerCase()).then((challenge) => {
          if (challenge) cb(null, challenge)
          else cb(new Error('no acme-tls/1 challenge open for this name'))
        })
        return
      }
      if (current.certs?.covers(servername) === true || acme === null) return current.certs!.SNICallback(servername, cb)
      const issued = acme.contextFor(servername)
      if (issued) return cb(null, issued)
      if (current.certs) return current.certs.SNICallback(servername, cb)
      cb(new Error('no certificate for this name yet'))
    },
    // ALPN is chosen before the certificate: a validation handshake (RFC 8737) offers only
    // acme-tls/1 and is marked here for the SNI callback; visitors get h2 when they offer it
    // (handed to the HTTP/2 server below), else http/1.1.
    ALPNCallback(this: tls.TLSSocket, { servername, protocols }: { servername: string; protocols: string[] }): string | undefined {
      if (acme && protocols.includes(ACME_TLS_ALPN) && acme.mayAnswerAlpn(servername.toLowerCase())) {
        (this as tls.TLSSocket & { [acmeValidation]?: boolean })[acmeValidation] = true
        return ACME_TLS_ALPN
      }
      if (protocols.includes('h2')) return 'h2'
      return protocols.includes('http/1.1') ? 'http/1.1' : undefined
    },
    // Visitor client certificates are optional here; sites with client_certs demand them.
    requestCert: config.pki !== null,
    rejectUnauthorized: false, // lint-allow: relay-decides (per-site client_certs check after the handshake)
    ...ca,
    ...visitorServerOptions(config.limits),
    // A TLS handshake gets as long as request headers do (Node's default is 120 s).
    handshakeTimeout: config.limits.headers_timeout_ms,
  })
  serveVisitors(server, handler)
  routeH2Connections(server, createVisitorH2Server(handler, config.limits, log.child({ component: 'visitors' })))
  // RFC 8737: a validation handshake carries no data afterwards; close it rather than parse HTTP.
  if (acme) server.on('secureConnection', (socket: tls.TLSSocket) => { if (socket.alpnProtocol === ACME_TLS_ALPN) socket.end() })
  return {
    server,
    rotate(next: PublicCertificates): void {
      // The default context serves clients without SNI; the callback serves everyone else.
      if (next.certs) server.setSecureContext({ cert: next.certs.cert, key: next.certs.key, ...next.ca })
      current = next
    },
    covers: (name) => current.certs?.covers(name) === true,
  }
}

function readFile(file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw new PorchlightError('PL_ERR_TLS_FILE', [file, (err as Error).message], { cause: err })
  }
}

function listenOn(server: Server | https.Server, address: Address, label: string): Promise<Address> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new PorchlightError('PL_ERR_LISTEN', [formatAddress(address), label, err.code ?? err.message], { cause: err }))
    }
    server.once('error', onError)
    server.listen(address.port, address.host, () => {
      server.off('error', onError)
      const a = server.address() as AddressInfo
      resolve({ host: a.address, port: a.port })
    })
  })
}
