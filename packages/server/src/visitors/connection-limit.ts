import type { Server, Socket } from 'node:net'
import type { RefusalWatch } from './refusals.js'

/** Over-cap connections answered with a 503 at once, relay-wide; beyond it they are closed. */
export const ANSWERED_REFUSALS_MAX = 64
/** An over-cap connection must send its request head within this, or it is closed. */
export const REFUSAL_HEAD_TIMEOUT_MS = 2000

export interface ConnectionLimitOptions {
  /** Which listener, for metrics and logs: "public", "public_tls", "agents". */
  listener: string
  /** Read the request head of an over-cap connection and answer 503 (HTTP listeners). */
  answer: boolean
  watch?: RefusalWatch
}

// "localPort|remoteAddress|remotePort" of over-cap connections waiting for their 503. A TLS
// socket reports the same three values as the TCP socket under it, so both listeners can ask.
const overCap = new Set<string>()
let answering = 0

function keyOf(socket: Socket): string {
  return `${socket.localPort}|${socket.remoteAddress}|${socket.remotePort}`
}

/**
 * True for a connection over its address's cap that the visitor handler must answer with 503
 * (`PL_ERR_HTTP_TOO_MANY_CONNECTIONS`) instead of serving.
 */
export function isOverConnectionCap(socket: Socket): boolean {
  return overCap.size > 0 && overCap.has(keyOf(socket))
}

/**
 * Caps concurrent connections per client IP on a listener, so one address cannot hoard sockets
 * (slowloris, pre-auth floods). An excess connection on an HTTP listener is not dropped silently:
 * within a small relay-wide budget it may send its request head (for at most 2 s) and gets a 503
 * with Retry-After; beyond the budget it is closed at once. Every refusal is counted and logged in
 * a per-address summary (RefusalWatch). The table holds only live connections.
 */
export function limitConnectionsPerIp(server: Server, maxPerIp: number, opts: ConnectionLimitOptions = { listener: 'public', answer: false }): () => number {
  const live = new Map<string, number>()
  server.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress ?? ''
    const count = (live.get(ip) ?? 0) + 1
    if (count > maxPerIp) {
      refuse(socket, ip, opts)
      return
    }
    live.set(ip, count)
    socket.once('close', () => {
      const left = (live.get(ip) ?? 1) - 1
      if (left <= 0) live.delete(ip)
      else live.set(ip, left)
    })
  })
  return () => live.size
}

function refuse(socket: Socket, ip: string, opts: ConnectionLimitOptions): void {
  if (!opts.answer || answering >= ANSWERED_REFUSALS_MAX) {
    opts.watch?.refused(opts.listener, ip, false)
    socket.destroy()
    return
  }
  opts.watch?.refused(opts.listener, ip, true)
  answering++
  const key = keyOf(socket)
  overCap.add(key)
  const timer = setTimeout(() => socket.destroy(), REFUSAL_HEAD_TIMEOUT_MS)
  timer.unref()
  socket.once('close', () => {
    clearTimeout(timer)
    overCap.delete(key)
    answering--
  })
}
