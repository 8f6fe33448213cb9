import type { AccessSpec } from '@porchlight/shared/protocol'
import type { AgentSession } from './session.js'

/** One published HTTP hostname and who serves it. */
export interface HttpRoute {
  host: string
  agent: string
  tunnelId: string
  access: AccessSpec | null
  /** The live session, or null while the owning agent is offline (visitors get 503). */
  session: AgentSession | null
}

/**
 * Hostname -> route, and agent name -> live session. One hostname has one owner: a host stays
 * reserved for its agent while that agent is offline, so nobody else can take it over.
 */
export class Registry {
  private readonly sessions = new Map<string, AgentSession>()
  private readonly routes = new Map<string, HttpRoute>()

  /** Registers a session; returns the stale session of the same agent it replaces, if any. */
  attach(session: AgentSession): AgentSession | undefined {
    const previous = this.sessions.get(session.agent)
    this.sessions.set(session.agent, session)
    return previous
  }

  /** Forgets a session (only if it is still the current one) and marks its routes offline. */
  detach(session: AgentSession): void {
    if (this.sessions.get(session.agent) !== session) return
    this.sessions.delete(session.agent)
    for (const route of this.routes.values()) {
      if (route.session === session) route.session = null
    }
  }

  session(agent: string): AgentSession | undefined {
    return this.sessions.get(agent)
  }

  allSessions(): AgentSession[] {
    return [...this.sessions.values()]
  }

  route(host: string): HttpRoute | undefined {
    return this.routes.get(host)
  }

  /** True when another agent owns (online or offline) this host. */
  ownedByOther(host: string, agent: string): boolean {
    const route = this.routes.get(host)
    return route !== undefined && route.agent !== agent
  }

  /** Replaces everything `session.agent` publishes over HTTP with `routes`. */
  setRoutes(session: AgentSession, routes: Array<Omit<HttpRoute, 'session' | 'agent'>>): void {
    for (const [host, route] of this.routes) {
      if (route.agent === session.agent) this.routes.delete(host)
    }
    for (const r of routes) this.routes.set(r.host, { ...r, agent: session.agent, session })
  }

  /** Drops every route of an agent (config reload removed the agent). */
  forgetAgent(agent: string): void {
    for (const [host, route] of this.routes) if (route.agent === agent) this.routes.delete(host)
  }

  routesOf(agent: string): HttpRoute[] {
    return [...this.routes.values()].filter((r) => r.agent === agent)
  }

  get routeCount(): number {
    return this.routes.size
  }
}
