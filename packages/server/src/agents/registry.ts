import type { Duplex } from 'node:stream'
import type { AccessSpec, OriginSpec } from '@porchlight/shared/protocol'

/**
 * What the registry and the TCP ports need of a session: who it is and a way to open a stream.
 * A narrow view, so routing code never reaches into the session (or its context).
 */
export interface SessionRef {
  readonly agent: string
  /** The agent process's instance id; several instances of one agent may hold sessions side by side. */
  readonly instance: string
  readonly id: string
  readonly isClosed: boolean
  /** Opens a stream for visitor traffic; throws a PorchlightError if the link is gone. */
  openStream(): Duplex
  /** Runs `fn` once the agent says it is stopping (it takes no new streams, its idle ones should close); returns the undo. */
  whenLeaving?(fn: () => void): () => void
}

/** One published HTTP hostname and who serves it. */
export interface HttpRoute<S extends SessionRef = SessionRef> {
  host: string
  agent: string
  /** The instance that published it: only that instance's session, or its replacement, serves it. */
  instance: string
  tunnelId: string
  access: AccessSpec | null
  /** Present when the agent takes one piped stream per visitor connection (see OriginSpec). */
  origin?: OriginSpec
  /** The relay picked this name for a quick share (released when its process leaves). */
  picked?: boolean
  /** The live session, or null while the owning process is offline (visitors get 503). */
  session: S | null
}

/** Why a claim on a hostname is refused, or null when it may be taken. */
export type ClaimRefusal = 'other-agent' | 'other-instance' | null

/**
 * Hostname -> route, and (agent, instance) -> live session. The ownership rules:
 * - a hostname has one owner session; a second claim by another instance of the same agent is
 *   refused while the owner's session is live, and allowed once it is gone;
 * - a hostname stays reserved for its agent while that agent is offline, so no OTHER agent can
 *   take it over (any process of the same agent may);
 * - a session's close marks only its own routes offline; a reconnect of the same instance
 *   replaces that instance's routes and nothing else.
 */
export class Registry<S extends SessionRef = SessionRef> {
  private readonly sessions = new Map<string, S>()
  private readonly routes = new Map<string, HttpRoute<S>>()

  /** Registers a session; returns the stale session of the same agent instance it replaces, if any. */
  attach(session: S): S | undefined {
    const key = sessionKey(session.agent, session.instance)
    const previous = this.sessions.get(key)
    this.sessions.set(key, session)
    return previous === session ? undefined : previous
  }

  /** Forgets a session (only if it is still the current one of its instance); its routes go offline. */
  detach(session: S): void {
    const key = sessionKey(session.agent, session.instance)
    if (this.sessions.get(key) === session) this.sessions.delete(key)
    for (const route of this.routes.values()) {
      if (route.session === session) route.session = null
    }
  }

  session(agent: string, instance: string): S | undefined {
    return this.sessions.get(sessionKey(agent, instance))
  }

  sessionsOf(agent: string): S[] {
    return [...this.sessions.values()].filter((s) => s.agent === agent)
  }

  allSessions(): S[] {
    return [...this.sessions.values()]
  }

  route(host: string): HttpRoute<S> | undefined {
    return this.routes.get(host)
  }

  /**
   * Whether a route may serve now (in a cluster: its owner's lease on a contested name is current
   * here); checked in memory on every visitor lookup. Default: always.
   */
  fence: (route: HttpRoute<S>) => boolean = () => true

  /** The route visitors are served by: as route(), but offline (no session) while fenced. */
  servingRoute(host: string): HttpRoute<S> | undefined {
    const route = this.routes.get(host)
    if (route === undefined || route.session === null || this.fence(route)) return route
    return { ...route, session: null }
  }

  /** May `session` publish `host`? (Policy is checked elsewhere; this is ownership only.) */
  claimRefusal(host: string, session: Pick<S, 'agent' | 'instance'>): ClaimRefusal {
    const route = this.routes.get(host)
    if (route === undefined) return null
    if (route.agent !== session.agent) return 'other-agent'
    if (route.instance === session.instance) return null
    return route.session !== null && !route.session.isClosed ? 'other-instance' : null
  }

  /** True when another agent owns (online or offline) this host. */
  ownedByOther(host: string, agent: string): boolean {
    const route = this.routes.get(host)
    return route !== undefined && route.agent !== agent
  }

  /**
   * Replaces everything `session`'s instance publishes over HTTP with `routes`. Callers check
   * claimRefusal first; a route taken over from a gone instance changes hands here.
   */
  setRoutes(session: S, routes: Array<Pick<HttpRoute, 'host' | 'tunnelId' | 'access' | 'picked' | 'origin'>>): void {
    for (const [host, route] of this.routes) {
      if (route.agent === session.agent && (route.instance === session.instance || route.session === session)) this.routes.delete(host)
    }
    for (const r of routes) this.routes.set(r.host, { ...r, agent: session.agent, instance: session.instance, session })
  }

  /** Drops the routes `keep` says no to (a reload withdrew them); returns the dropped hosts. */
  dropRoutes(keep: (route: HttpRoute<S>) => boolean): string[] {
    const dropped: string[] = []
    for (const [host, route] of this.routes) {
      if (!keep(route)) {
        this.routes.delete(host)
        dropped.push(host)
      }
    }
    return dropped
  }

  /** Drops every route of an agent (config reload removed the agent): its names are free again. */
  forgetAgent(agent: string): void {
    for (const [host, route] of this.routes) if (route.agent === agent) this.routes.delete(host)
  }

  routesOf(agent: string): Array<HttpRoute<S>> {
    return [...this.routes.values()].filter((r) => r.agent === agent)
  }

  /** The routes one instance of an agent published (live or offline). */
  routesOfInstance(agent: string, instance: string): Array<HttpRoute<S>> {
    return [...this.routes.values()].filter((r) => r.agent === agent && r.instance === instance)
  }

  get routeCount(): number {
    return this.routes.size
  }
}

function sessionKey(agent: string, instance: string): string {
  return `${agent}\u0000${instance}`
}
