import http from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { isPorchlightError, type ErrorCode } from '@porchlight/shared/errors'
import { parseReplyHead, readHead, writeHead } from '@porchlight/shared/protocol'
import type { HttpRoute, SessionRef } from '../agents/registry.js'

/**
 * One mux stream per visitor connection and tunnel (SECURITY.md rule 2): the relay's own HTTP
 * client (Node's) writes each request onto it from the relay's strict parse of the visitor's,
 * and parses each response before the visitor sees it; the agent pipes the stream to one
 * connection to its local server. A stream is never shared between two visitor connections, so a
 * confused origin (extra bytes, a wrong Content-Length, an early answer) can only ever answer the
 * connection that asked, and bytes it sends while no request is pending close the stream.
 */

/** Opening the stream failed; `code` names the page the visitor gets. */
export class ConnectionStreamError extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message)
    this.name = 'ConnectionStreamError'
  }
}

/** At most this many tunnels (Host names) per visitor connection keep an open stream. */
const MAX_TUNNELS_PER_CONNECTION = 8
/**
 * An idle stream is closed after this long: it counts against limits.max_streams_per_agent, and
 * local servers often close idle connections after 5 s (Node's default), which would race a reuse.
 */
const IDLE_STREAM_MS = 4_000

interface Entry { session: SessionRef; agent: ConnectionStreamAgent }

const byVisitor = new WeakMap<Socket, Map<string, Entry>>()

/**
 * The keep-alive client agent holding this visitor connection's stream to `route`'s agent
 * session, made on first use; the streams close with the visitor's connection. Null when the
 * tunnel has no live session.
 */
export function connectionStreamAgent(visitor: Socket, route: HttpRoute, openTimeoutMs: number): http.Agent | null {
  const session = route.session
  if (session === null || session.isClosed) return null
  let entries = byVisitor.get(visitor)
  if (entries === undefined) {
    const created = new Map<string, Entry>()
    entries = created
    byVisitor.set(visitor, created)
    visitor.once('close', () => {
      for (const e of created.values()) e.agent.destroy()
      created.clear()
    })
  }
  const key = `${route.tunnelId}\0${route.host}`
  let entry = entries.get(key)
  if (entry !== undefined && entry.session !== session) {
    // The agent reconnected: the old session's streams are gone with it.
    entry.agent.destroy()
    entries.delete(key)
    entry = undefined
  }
  if (entry === undefined) {
    if (entries.size >= MAX_TUNNELS_PER_CONNECTION) {
      const [oldestKey, oldest] = entries.entries().next().value as [string, Entry]
      oldest.agent.destroy()
      entries.delete(oldestKey)
    }
    entry = { session, agent: new ConnectionStreamAgent(session, route.tunnelId, route.host, openTimeoutMs) }
    entries.set(key, entry)
  }
  return entry.agent
}

/** Node's http.Agent whose one "socket" is a mux stream opened with an `http-conn` head. */
class ConnectionStreamAgent extends http.Agent {
  /** The agent is stopping: no stream is kept for another request. */
  private retired = false
  private readonly forgetLeaving: () => void

  constructor(
    private readonly session: SessionRef,
    private readonly tunnel: string,
    private readonly host: string,
    private readonly openTimeoutMs: number,
  ) {
    // One stream: requests of one visitor connection go one after another, as the visitor sent them.
    super({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 })
    // A stopping agent waits for its streams: close the idle one now and the busy one after its response.
    this.forgetLeaving = session.whenLeaving?.(() => this.retire()) ?? ignore
  }

  override destroy(): void {
    this.forgetLeaving()
    super.destroy()
  }

  private retire(): void {
    this.retired = true
    for (const sockets of Object.values(this.freeSockets)) for (const socket of sockets ?? []) socket.destroy()
  }

  /** Node's Agent accepts a socket handed to the callback later (the agent dials its origin first). */
  override createConnection(_options: unknown, callback: (err: Error | null, socket?: Duplex) => void): undefined {
    openConnectionStream(this.session, this.tunnel, this.host, this.openTimeoutMs).then(
      (stream) => callback(null, stream),
      (err: Error) => callback(err),
    )
    return undefined
  }

  override keepSocketAlive(socket: Socket): boolean {
    if (this.retired || this.session.isClosed) return false
    // Typed void in @types/node; Node returns whether the socket may be kept.
    const keep = (super.keepSocketAlive(socket) as unknown) !== false
    if (!keep) return false
    // Bytes while no request is pending come from a confused origin: never let them answer one.
    socket.on('data', closeOnStrayBytes)
    const idle = setTimeout(() => socket.destroy(), IDLE_STREAM_MS)
    idle.unref()
    idleTimers.set(socket, idle)
    return true
  }

  override reuseSocket(socket: Socket, request: http.ClientRequest): void {
    socket.off('data', closeOnStrayBytes)
    clearTimeout(idleTimers.get(socket))
    super.reuseSocket(socket, request)
  }
}

const idleTimers = new WeakMap<Socket, NodeJS.Timeout>()

function closeOnStrayBytes(this: Duplex): void {
  this.destroy()
}

async function openConnectionStream(session: SessionRef, tunnel: string, host: string, timeoutMs: number): Promise<Duplex> {
  if (session.isClosed) throw new ConnectionStreamError('PL_ERR_HTTP_TUNNEL_OFFLINE', 'tunnel offline')
  let stream: Duplex
  try {
    stream = session.openStream()
  } catch (err) {
    const limit = isPorchlightError(err) && err.code === 'PL_ERR_MUX_STREAM_LIMIT'
    throw new ConnectionStreamError(limit ? 'PL_ERR_MUX_STREAM_LIMIT' : 'PL_ERR_HTTP_TUNNEL_OFFLINE', 'cannot open a stream')
  }
  // Errors reach the request through Node's client once it owns the stream; until then, here.
  stream.on('error', ignore)
  writeHead(stream, { t: 'http-conn', tunnel, host })
  let reply
  try {
    reply = parseReplyHead(await readHead(stream, timeoutMs))
  } catch (err) {
    stream.destroy()
    if (session.isClosed) throw new ConnectionStreamError('PL_ERR_HTTP_TUNNEL_OFFLINE', 'tunnel offline')
    if ((err as { code?: string }).code === 'PL_ERR_PROTO_HEAD_TIMEOUT') throw new ConnectionStreamError('PL_ERR_HTTP_ORIGIN_TIMEOUT', 'no answer from the agent in time')
    throw new ConnectionStreamError('PL_ERR_HTTP_BAD_ORIGIN_RESPONSE', 'invalid answer from the agent')
  }
  if (reply.t !== 'ok') {
    stream.destroy()
    const code = reply.t === 'error' ? reply.code : ''
    const passOn = code === 'PL_ERR_HTTP_ORIGIN_UNREACHABLE' || code === 'PL_ERR_HTTP_TUNNEL_OFFLINE'
    throw new ConnectionStreamError(passOn ? code : 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE', reply.t === 'error' ? reply.message : 'unexpected reply head')
  }
  return asClientSocket(stream)
}

/**
 * Node's client treats its connection as a net.Socket: keep-alive, ref and timeout calls become
 * no-ops (the visitor's connection bounds this stream's life), and a stream the agent ended (its
 * origin closed the connection) is closed so the client never writes a request into it.
 */
function asClientSocket(stream: Duplex): Duplex {
  const socketLike = stream as Duplex & Record<'setKeepAlive' | 'setNoDelay' | 'setTimeout' | 'ref' | 'unref', () => Duplex>
  for (const method of ['setKeepAlive', 'setNoDelay', 'setTimeout', 'ref', 'unref'] as const) socketLike[method] = () => stream
  // After the client's own 'end' handling (a close-delimited body ends there).
  stream.once('end', () => setImmediate(() => stream.destroy()))
  return stream
}

function ignore(): void {}
