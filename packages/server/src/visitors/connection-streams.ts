import type { HttpRoute, SessionRef } from '../agents/registry.js'
import { OriginConnection } from './origin-connection.js'

/**
 * Which origin connection (origin-connection.ts) a visitor's request goes over: those of its own
 * visitor connection and tunnel, made on first use and closed with the visitor's connection. A
 * stream is never shared between two visitor connections (SECURITY.md rule 2), so a confused
 * origin can only ever answer the connection that asked.
 */

/** A visitor's TCP connection, or its HTTP/2 session: anything that says when it closes. */
export interface VisitorConnection {
  once(event: 'close', listener: () => void): unknown
}

/** At most this many tunnels (Host names) per visitor connection keep open streams. */
const MAX_TUNNELS_PER_CONNECTION = 8
/**
 * Origin connections an HTTP/2 visitor session may use per tunnel at once: as many as a browser
 * opens over HTTP/1.1, so its concurrent requests are not served one by one; more wait their turn.
 */
export const H2_ORIGIN_CONNECTIONS = 6

interface Entry { session: SessionRef; connections: OriginConnection[] }

const byVisitor = new WeakMap<VisitorConnection, Map<string, Entry>>()

/**
 * This visitor connection's origin connection for `route`: an idle one, else a new one while
 * fewer than `parallel` exist, else the one with the fewest waiting. Null when the tunnel has no
 * live session.
 */
export function originConnectionFor(visitor: VisitorConnection, route: HttpRoute, parallel = 1): OriginConnection | null {
  const session = route.session
  if (session === null || session.isClosed) return null
  let entries = byVisitor.get(visitor)
  if (entries === undefined) {
    const created = new Map<string, Entry>()
    entries = created
    byVisitor.set(visitor, created)
    visitor.once('close', () => {
      for (const e of created.values()) for (const c of e.connections) c.destroy()
      created.clear()
    })
  }
  const key = `${route.tunnelId}\0${route.host}`
  let entry = entries.get(key)
  if (entry !== undefined && entry.session !== session) {
    // The agent reconnected: the old session's streams are gone with it.
    for (const c of entry.connections) c.destroy()
    entries.delete(key)
    entry = undefined
  }
  if (entry === undefined) {
    if (entries.size >= MAX_TUNNELS_PER_CONNECTION) {
      const [oldestKey, oldest] = entries.entries().next().value as [string, Entry]
      for (const c of oldest.connections) c.destroy()
      entries.delete(oldestKey)
    }
    entry = { session, connections: [] }
    entries.set(key, entry)
  }
  const idle = entry.connections.find((c) => !c.busy)
  if (idle !== undefined) return idle
  if (entry.connections.length < parallel) {
    const made = new OriginConnection(session, route.tunnelId, route.host)
    entry.connections.push(made)
    return made
  }
  return entry.connections.reduce((a, b) => (b.waitingCount < a.waitingCount ? b : a))
}
