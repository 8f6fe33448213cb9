import type { RelayConfig } from '@porchlight/shared/config'
import { randomTunnelName } from '@porchlight/shared/config'
import { PorchlightError, type ErrorCode } from '@porchlight/shared/errors'
import type { Logger } from '@porchlight/shared/log'
import type { PublishResult, RelayMessage, TunnelSpec } from '@porchlight/shared/protocol'
import { accessRulesProblems } from '../access/decide.js'
import { decideHost, type HostDecision } from './policy.js'
import { Registry, type HttpRoute, type SessionRef } from './registry.js'
import { reject } from './results.js'
import type { TcpPorts } from './tcp-ports.js'

/** The `host` of an http tunnel that asks the relay for a free random name inside the agent's policy. */
export const RANDOM_HOST = '*'
/**
 * How long the live owner of a hostname has to answer a ping when another process of its agent
 * claims the name. A stale link (the laptop rebooted, the process hung) never answers and is
 * closed so the claim succeeds; a live one answers in a round trip and keeps the name.
 */
export const OWNER_PING_MS = 800
/** Names drawn before giving up (each is 16 bits of hex plus two words, so collisions are rare). */
const RANDOM_NAME_TRIES = 8

/** What the tunnel table needs of a session, beyond routing (SessionRef). */
export interface TunnelSession extends SessionRef {
  readonly log: Logger
  /** The `token_sha256` the session authenticated against: a reload that changes it closes the session. */
  readonly tokenSha256: string
  /** Serial of its client certificate, or null (a reload that adds `require_cert` closes it). */
  readonly certSerial: string | null
  /** The agent said it is going away (GoAway: the process is stopping), not merely lost. */
  readonly leaving?: boolean
  /** The last publish and its results (re-applied on reload; shown in the admin API). */
  tunnels: TunnelSpec[]
  results: PublishResult[]
  send(message: RelayMessage): void
  /** True when the agent answers a ping within `timeoutMs`. */
  answersPing(timeoutMs: number): Promise<boolean>
  close(err?: Error, notice?: { code: string; message: string }): void
}

export interface TunnelTableDeps {
  config: () => RelayConfig
  log: Logger
  tcpPorts: TcpPorts
  /** Hostnames the relay itself answers on; never claimable by agents. */
  reservedHosts: () => ReadonlySet<string>
  publicUrl: (host: string) => string
  /** A hostname was accepted under the agent's policy (ACME orders its certificate). */
  onHostPublished?: (host: string) => void
  /** Cluster leases for hostnames and ports several agents' policies admit; null on a single relay. */
  leases?: () => LeaseClaims | null
}

/** What publishing needs of the cluster's leases (cluster/leases.ts); resources are `host:<name>` or `port:<n>`. */
export interface LeaseClaims {
  claim(resource: string, owner: { agent: string; instance: string }): Promise<{ ok: true } | { ok: false; code: 'PL_ERR_LEASE_HELD'; holder: string } | { ok: false; code: 'PL_ERR_CLUSTER_REDIS'; reason: string }>
}

/**
 * The one owner of what agents publish: HTTP routes (through the registry), relay TCP ports and
 * the policy they are checked against. `publish` applies an agent's tunnel set, `unpublish` takes
 * a closed session's tunnels down, `reload` applies a new relay.yaml to live sessions.
 */
export class TunnelTable<S extends TunnelSession = TunnelSession> {
  readonly registry = new Registry<S>()

  constructor(private readonly deps: TunnelTableDeps) {}

  /** Registers a session; returns the stale session of the same process it replaces, if any. */
  attach(session: S): S | undefined {
    return this.registry.attach(session)
  }

  /**
   * Applies a session's `publish`: every tunnel is accepted (with its public URL) or rejected with
   * a code. The session's whole previous set is replaced; other sessions' routes are untouched.
   */
  async publish(session: S, tunnels: TunnelSpec[]): Promise<PublishResult[]> {
    const config = this.deps.config()
    const policy = config.agents[session.agent]
    const results: PublishResult[] = []
    const routes: Array<Pick<HttpRoute, 'host' | 'tunnelId' | 'access' | 'picked'>> = []
    const seenHosts = new Set<string>()
    const wantedTcp: Array<{ spec: Extract<TunnelSpec, { kind: 'tcp' }>; index: number }> = []

    for (const spec of tunnels) {
      if (!policy) {
        results.push(reject(spec.id, 'PL_ERR_POLICY_HOST_DENIED', spec.id, session.agent))
        continue
      }
      if (spec.kind === 'tcp') {
        wantedTcp.push({ spec, index: results.length })
        results.push(reject(spec.id, 'PL_ERR_INTERNAL'))
        continue
      }
      const accessProblems = spec.access ? accessRulesProblems(spec.access) : []
      if (accessProblems.length > 0) {
        results.push({ id: spec.id, ok: false, code: 'PL_ERR_PROTO_BAD_MESSAGE', message: `invalid access rules: ${accessProblems.join('; ')}`.slice(0, 1024) })
        continue
      }
      const decision = spec.host === RANDOM_HOST
        ? this.pickName(session, spec.id, policy.hosts, seenHosts)
        : decideHost(spec.host, config.domain, policy.hosts, this.deps.reservedHosts())
      if (!decision.ok) {
        results.push(decision.code === 'PL_ERR_POLICY_NO_FREE_NAME' ? reject(spec.id, decision.code, session.agent) : reject(spec.id, decision.code, decision.host, session.agent))
        continue
      }
      // A name several agents' policies admit is decided by the cluster's lease, not by who reached this relay first.
      const leases = seenHosts.has(decision.host) ? null : this.deps.leases?.() ?? null
      if (leases !== null && this.contested(decision.host)) {
        const lease = await leases.claim(`host:${decision.host}`, session)
        if (!lease.ok) {
          results.push(lease.code === 'PL_ERR_LEASE_HELD' ? reject(spec.id, lease.code, `host ${decision.host}`, lease.holder) : reject(spec.id, lease.code, 'lease', lease.reason))
          continue
        }
        const held = this.registry.route(decision.host)
        if (held !== undefined && (held.agent !== session.agent || held.instance !== session.instance)) this.withdrawLeased(`host:${decision.host}`, held, session.agent)
      }
      let refusal = seenHosts.has(decision.host) ? 'other-agent' : this.registry.claimRefusal(decision.host, session)
      if (refusal === 'other-instance' && await this.ownerIsStale(decision.host)) refusal = this.registry.claimRefusal(decision.host, session)
      if (refusal === 'other-agent') {
        results.push(reject(spec.id, 'PL_ERR_POLICY_HOST_IN_USE', decision.host))
        continue
      }
      if (refusal === 'other-instance') {
        results.push(reject(spec.id, 'PL_ERR_POLICY_HOST_TAKEN', decision.host, session.agent))
        continue
      }
      seenHosts.add(decision.host)
      routes.push({ host: decision.host, tunnelId: spec.id, access: spec.access ?? null, ...(spec.origin !== undefined ? { origin: spec.origin } : {}), ...(spec.host === RANDOM_HOST || this.wasPicked(session, decision.host) ? { picked: true } : {}) })
      results.push({ id: spec.id, ok: true, url: this.deps.publicUrl(decision.host) })
    }

    if (!session.isClosed) {
      this.registry.setRoutes(session, routes)
      for (const r of routes) this.deps.onHostPublished?.(r.host)
    }
    const tcpResults = await this.deps.tcpPorts.apply(session, wantedTcp.map((w) => w.spec))
    wantedTcp.forEach((w, i) => { results[w.index] = tcpResults[i]! })

    for (const r of results) {
      if (r.ok) session.log.info({ tunnel: r.id, url: r.url }, 'tunnel published')
      else session.log.warn({ tunnel: r.id, code: r.code, reason: r.message }, 'tunnel rejected')
    }
    session.tunnels = tunnels
    session.results = results
    return results
  }

  /** More than one agent's policy admits `host`: config does not pin it to one agent. */
  private contested(host: string): boolean {
    const config = this.deps.config()
    const reserved = this.deps.reservedHosts()
    let admitting = 0
    for (const policy of Object.values(config.agents)) {
      if (decideHost(host, config.domain, policy.hosts, reserved).ok && ++admitting > 1) return true
    }
    return false
  }

  /**
   * The cluster lease on `resource` (`host:<name>` or `port:<n>`) passed from `owner` to another
   * agent: its route here is dropped (not kept offline for it), or its port stops listening, and
   * its live session is told once per relay (PL_ERR_LEASE_LOST).
   */
  withdrawLeased(resource: string, owner: { agent: string; instance: string }, holder: string | null): void {
    if (resource.startsWith('port:')) {
      const port = Number(resource.slice(5))
      const tunnelId = this.deps.tcpPorts.withdraw(port, owner)
      if (tunnelId === null) return
      this.deps.log.warn({ port, agent: owner.agent, holder }, 'lease lost: port closed')
      this.tellLeaseLost(owner, tunnelId, `port ${port}`, `tcp:${port}`)
      return
    }
    const host = resource.slice(5)
    const route = this.registry.route(host)
    if (route === undefined || route.agent !== owner.agent || route.instance !== owner.instance) return
    this.registry.dropRoutes((r) => r !== route)
    this.deps.log.warn({ host, agent: owner.agent, holder }, 'lease lost: route removed')
    this.tellLeaseLost(owner, route.tunnelId, `host ${host}`, host)
  }

  /** Marks the tunnel rejected in `owner`'s live session and sends `TUNNEL-ID WHAT` (the host, or tcp:PORT). */
  tellLeaseLost(owner: { agent: string; instance: string }, tunnelId: string, what: string, word: string): void {
    const s = this.registry.session(owner.agent, owner.instance)
    if (s === undefined || s.isClosed) return
    s.results = s.results.map((r) => (r.id === tunnelId ? reject(r.id, 'PL_ERR_LEASE_LOST', what, r.id) : r))
    s.send({ type: 'notice', level: 'warn', code: 'PL_ERR_LEASE_LOST', message: `${tunnelId} ${word}` })
  }

  /** True when `host` is a name the relay picked earlier for this process (asked for again by name). */
  private wasPicked(session: S, host: string): boolean {
    const r = this.registry.route(host)
    return r?.picked === true && r.agent === session.agent && r.instance === session.instance
  }

  /** Pings the live owner of `host`; one that does not answer is closed as stale (true). */
  private ownerIsStale(host: string): Promise<boolean> {
    const owner = this.registry.route(host)?.session
    return owner ? this.replaceIfStale(owner, { host }) : Promise.resolve(true)
  }

  /**
   * Another process of the same agent claims a name or port `owner` holds: an owner that does not
   * answer a ping within OWNER_PING_MS is closed as stale and true returned; a live one keeps it.
   */
  async replaceIfStale(owner: S, what: { host?: string; port?: number } = {}): Promise<boolean> {
    if (owner.isClosed) return true
    if (await owner.answersPing(OWNER_PING_MS)) return false
    owner.log.info(what, 'another process of this agent claims what this session holds, and it did not answer a ping; closing it as stale')
    owner.close(new PorchlightError('PL_ERR_LINK_REPLACED'), { code: 'PL_ERR_LINK_REPLACED', message: 'replaced by a newer process of the same agent' })
    return true
  }

  /**
   * A session ended: its TCP ports stop listening, its hosts go offline (503), still reserved for its
   * agent. Names the relay picked for a quick share whose process is stopping (it sent GoAway) are
   * released instead: nobody will come back for them.
   */
  unpublish(session: S): void {
    if (session.leaving === true) this.registry.dropRoutes((r) => !(r.session === session && r.picked === true))
    this.registry.detach(session)
    void this.deps.tcpPorts.apply(session, []).catch(() => undefined)
  }

  /**
   * Applies a new relay.yaml (SIGHUP) to live sessions: a removed agent, a changed `token_sha256`
   * or a new `require_cert` the session does not meet closes the session (a removed agent's names
   * are released too); every other live session's tunnels are published again against the new
   * policy, so withdrawn hosts and ports stop serving at once and the agent gets a notice for each.
   * Call after the new config is in force (deps.config() returns it).
   */
  async reload(next: RelayConfig): Promise<void> {
    for (const s of this.registry.allSessions()) {
      const why = disqualified(s, next)
      if (why === null) continue
      s.log.warn({ code: why.code, reason: why.message }, 'relay config reload: closing agent session')
      s.close(new PorchlightError(why.code, why.args), { code: why.code, message: why.message })
    }
    const removed = new Set<string>()
    for (const s of this.registry.allSessions()) if (!next.agents[s.agent]) removed.add(s.agent)
    for (const agent of this.deps.tcpPorts.agents()) if (!next.agents[agent]) removed.add(agent)
    const reserved = this.deps.reservedHosts()
    // Offline routes (their process is away) of removed agents and hosts the policy withdrew are
    // forgotten; a live session's routes are re-decided by its re-publish below.
    const dropped = this.registry.dropRoutes((r) => {
      const policy = next.agents[r.agent]
      if (!policy) return false
      return r.session !== null || decideHost(r.host, next.domain, policy.hosts, reserved).ok
    })
    for (const agent of removed) await this.deps.tcpPorts.forgetAgent(agent)
    if (dropped.length > 0) this.deps.log.info({ hosts: dropped.slice(0, 20), count: dropped.length }, 'relay config reload: offline hostnames released')

    await Promise.all(this.registry.allSessions().filter((s) => !s.isClosed).map((s) => this.republish(s)))
  }

  /**
   * Publishes a live session's accepted tunnels again under the current policy. Tunnels the relay
   * rejected before stay rejected until the agent publishes again (it would not serve them: it
   * only answers for tunnels it saw accepted); each one withdrawn now gets a notice.
   */
  private async republish(s: S): Promise<void> {
    const tunnels = s.tunnels
    const before = new Map(s.results.map((r) => [r.id, r]))
    const accepted = tunnels.filter((t) => before.get(t.id)?.ok === true)
    const after = new Map((await this.publish(s, accepted)).map((r) => [r.id, r]))
    s.tunnels = tunnels
    s.results = tunnels.map((t) => after.get(t.id) ?? before.get(t.id) ?? reject(t.id, 'PL_ERR_INTERNAL'))
    for (const r of after.values()) {
      if (r.ok) continue
      s.send({ type: 'notice', level: 'warn', code: r.code, message: `tunnel ${r.id} withdrawn by a relay config reload: ${r.message}`.slice(0, 1024) })
    }
  }

  /**
   * A free random name inside the policy for a quick share: the name this process's tunnel had
   * before (still allowed and not taken), else two words and 4 hex digits under a "*." pattern,
   * preferring the relay's domain.
   */
  private pickName(session: S, tunnelId: string, patterns: readonly string[], seen: ReadonlySet<string>): HostDecision | { ok: false; code: 'PL_ERR_POLICY_NO_FREE_NAME'; host: string } {
    const config = this.deps.config()
    const reserved = this.deps.reservedHosts()
    const previous = this.registry.routesOfInstance(session.agent, session.instance).find((r) => r.tunnelId === tunnelId)
    if (previous && decideHost(previous.host, config.domain, patterns, reserved).ok) return { ok: true, host: previous.host }
    const suffixes = patterns.filter((p) => p.startsWith('*.')).map((p) => p.slice(2))
    suffixes.sort((a, b) => Number(b === config.domain) - Number(a === config.domain))
    for (let i = 0; i < RANDOM_NAME_TRIES && suffixes.length > 0; i++) {
      const host = `${randomTunnelName()}.${suffixes[i % suffixes.length]!}`
      const decision = decideHost(host, config.domain, patterns, reserved)
      if (decision.ok && this.registry.route(decision.host) === undefined && !seen.has(decision.host)) return decision
    }
    return { ok: false, code: 'PL_ERR_POLICY_NO_FREE_NAME', host: RANDOM_HOST }
  }
}

function disqualified(s: TunnelSession, next: RelayConfig): { code: ErrorCode; args: string[]; message: string } | null {
  const policy = next.agents[s.agent]
  if (!policy) return { code: 'PL_ERR_AUTH_BAD_TOKEN', args: [], message: 'agent removed from relay config' }
  if (policy.token_sha256 !== s.tokenSha256) return { code: 'PL_ERR_AUTH_BAD_TOKEN', args: [], message: 'agent token changed in relay config' }
  if (policy.require_cert && s.certSerial === null) return { code: 'PL_ERR_AUTH_CERT_REQUIRED', args: [s.agent], message: 'relay config now requires a client certificate' }
  return null
}
