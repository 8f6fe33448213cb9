import type { Socket } from 'node:net'
import type { HttpRoute, SessionRef } from '../agents/registry.js'
import { OriginConnection } from './origin-connection.js'

/**
 * Which origin connection (origin-connection.ts) a visitor connection's request goes over: one per
 * visitor connection and tunnel, made on first use and closed with the visitor's connection. A
 * stream is never shared between two visitor connections (SECURITY.md rule 2), so a confused
 * origin can only ever answer the connection that asked.
 */

/** At most this many tunnels (Host names) per visitor connection keep an open stream. */
const MAX_TUNNELS_PER_CONNECTION = 8

interface Entry { session: SessionRef; connection: OriginConnection }

const byVisitor = new WeakMap<Socket, Map<string, Entry>>()

/** This visitor connection's origin connection for `route`; null when the tunnel has no live session. */
export function originConnectionFor(visitor: Socket, route: HttpRoute): OriginConnection | null {
  const session = route.session
  if (session === null || session.isClosed) return null
  let entries = byVisitor.get(visitor)
  if (entries === undefined) {
    const created = new Map<string, Entry>()
    entries = created
    byVisitor.set(visitor, created)
    visitor.once('close', () => {
      for (const e of created.values()) e.connection.destroy()
      created.clear()
    })
  }
  const key = `${route.tunnelId}\0${route.host}`
  let entry = entries.get(key)
  if (entry !== undefined && entry.session !== session) {
    // The agent reconnected: the old session's streams are gone with it.
    entry.connection.destroy()
    entries.delete(key)
    entry = undefined
  }
  if (entry === undefined) {
    if (entries.size >= MAX_TUNNELS_PER_CONNECTION) {
      const [oldestKey, oldest] = entries.entries().next().value as [string, Entry]
      oldest.connection.destroy()
      entries.delete(oldestKey)
    }
    entry = { session, connection: new OriginConnection(session, route.tunnelId, route.host) }
    entries.set(key, entry)
  }
  return entry.connection
}
