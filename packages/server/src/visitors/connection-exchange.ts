import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { Writable } from 'node:stream'
import type { ErrorCode } from '@porchlight/shared/errors'
import type { OriginSpec } from '@porchlight/shared/protocol'
import type { HttpRoute } from '../agents/registry.js'
import { H2_ORIGIN_CONNECTIONS, originConnectionFor, type VisitorConnection } from './connection-streams.js'
import { responseHeadersForVisitor } from './headers.js'
import type { OriginConnection, OriginRequest } from './origin-connection.js'
import { forwardRequestBody } from './request-body.js'
import { cutResponse } from './reply-body.js'
import { StallWatch } from './stall-watch.js'

/** Methods whose bodyless requests go without framing headers (others get Content-Length: 0). */
const BODYLESS_DEFAULT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'DELETE', 'CONNECT'])

export interface ConnectionExchangeOptions {
  req: IncomingMessage
  res: ServerResponse
  route: HttpRoute & { origin: OriginSpec }
  /** Request headers after the relay's visitor hygiene (requestHeadersForOrigin). */
  headers: Array<[string, string]>
  /** Origin-form target, share-link token removed. */
  url: string
  hasBody: boolean
  originTimeoutMs: number
  stallTimeoutMs: number
  maxBodyBytes: number | null
  onBytesIn: (n: number) => void
  onBytesOut: (n: number) => void
  onStall: (blockedMs: number, bytesOut: number) => void
  onBodyTooLarge: () => void
  /** Nothing was answered yet: the page for this code is the visitor's answer. */
  onFailure: (code: ErrorCode) => void
  /** The in-flight origin request, so a visitor whose framing breaks mid-body aborts it. */
  track: (request: { destroy(): void }) => void
}

/**
 * One visitor request over its connection's origin connection (origin-connection.ts): send (the
 * relay writes the canonical request from its strict parse) → await the reply head (parsed by
 * llhttp, bounded by origin_timeout_ms) → pipe the body with backpressure. Each stage either hands
 * on or ends with one error code; the caller's res 'close' handler accounts for the request.
 */
export function sendOverConnection(o: ConnectionExchangeOptions, retried = false): void {
  // HTTP/2: the requests of one session are concurrent, so a few origin connections serve them.
  const connection = originConnectionFor(visitorOf(o.req), o.route, isHttp2(o.req) ? H2_ORIGIN_CONNECTIONS : 1)
  if (connection === null) {
    o.onFailure('PL_ERR_HTTP_TUNNEL_OFFLINE')
    return
  }
  if (connection.busy) {
    // A pipelined request: its turn comes when the one before it is answered.
    if (!connection.whenFree(() => startExchange(o, connection, retried))) o.res.destroy()
    return
  }
  startExchange(o, connection, retried)
}

function startExchange(o: ConnectionExchangeOptions, connection: OriginConnection, retried: boolean): void {
  if (answeredOrGone(o.res)) return // the visitor left while it waited
  const method = o.req.method ?? 'GET'
  const head = requestHead(o, method)
  if (head === null) {
    // A character no HTTP/1.1 head may carry (rule 1): not the origin's fault.
    o.onFailure('PL_ERR_HTTP_BAD_REQUEST')
    return
  }
  const res = o.res
  let bytesOut = 0
  let stall: StallWatch | null = null
  const request = connection.begin(head, { isHead: method === 'HEAD', hasBody: o.hasBody, chunked: sentChunked(o), timeoutMs: o.originTimeoutMs }, {
    onHead: (status, message, headers) => !answeredOrGone(res) && writeReplyHead(status, message, headers, res),
    onBody: (chunk) => {
      bytesOut += chunk.length
      o.onBytesOut(chunk.length)
      if (res.write(chunk)) return
      connection.pauseReading()
      if (stall === null) {
        const watch = new StallWatch(o.stallTimeoutMs, (blockedMs) => {
          o.onStall(blockedMs, bytesOut)
          res.destroy()
        })
        res.once('close', () => watch.stop())
        stall = watch
      }
      stall.blocked()
    },
    onEnd: () => { res.end() },
    onFailure: (code, retriable) => {
      if (answeredOrGone(res)) return
      if (retriable && !retried && !o.hasBody && (method === 'GET' || method === 'HEAD')) {
        // The origin closed this keep-alive connection just as the request went out: once more, on a new one.
        sendOverConnection(o, true)
        return
      }
      o.onFailure(code)
    },
    // HTTP/2: the stream is reset, which its visitor sees as a truncated response.
    onCut: () => { if (isHttp2(o.req)) res.destroy(); else cutResponse(res, bytesOut > 0) },
  })
  if (request === null) return
  o.track(request)
  res.on('drain', () => {
    stall?.drained()
    connection.resumeReading()
  })
  // A visitor who goes away aborts the origin request, and with it the stream (a no-op once answered).
  res.once('close', () => request.abort())
if (o.hasBody) forwardRequestBody(o.req, bodyWriter(request), { maxBytes: o.maxBodyBytes, onBytes: o.onBytesIn, onTooLarge: o.onBodyTooLarge })
}

/** The request body's way onto the stream, as the Writable forwardRequestBody pipes into. */
function bodyWriter(request: OriginRequest): Writable {
  return new Writable({
    // Destroyed only when forwardRequestBody gives up on the body, never after a clean end.
    autoDestroy: false,
    write(chunk: Buffer, _encoding, done) { request.write(chunk, () => done()) },
    final(done) {
      request.finish()
      done()
    },
    destroy(err, done) {
      request.abort()
      done(err)
    },
  })
}

/**
 * The request head the origin reads, built from the relay's parse: the tunnel's Host and path
 * prefix, the visitor's headers after the relay's hygiene (Expect goes: the relay answered it), and
 * framing the relay decided. Null when a character could smuggle a line or a request (rule 1).
 */
function requestHead(o: ConnectionExchangeOptions, method: string): string | null {
  const path = `${o.route.origin.path}${o.url}`
  const host = o.route.origin.host
  if (!TOKEN.test(method) || INVALID_PATH.test(path) || INVALID_VALUE.test(host)) return null
  let head = `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\n`
  for (const [name, value] of o.headers) {
    const lower = name.toLowerCase()
    if (lower === 'host' || lower === 'expect') continue
    if (!TOKEN.test(name) || INVALID_VALUE.test(value)) return null
    head += `${name}: ${value}\r\n`
  }
  if (sentChunked(o)) head += 'Transfer-Encoding: chunked\r\n'
  else if (!o.hasBody && o.req.headers['content-length'] === undefined && !BODYLESS_DEFAULT.has(method.toUpperCase())) head += 'Content-Length: 0\r\n'
  return `${head}\r\n`
}

/**
 * A body of unknown length goes chunked: an HTTP/1.1 visitor's chunked one, or an HTTP/2 one sent
 * without Content-Length (its DATA frames end it). Never a body without framing.
 */
function sentChunked(o: ConnectionExchangeOptions): boolean {
  return o.hasBody && o.req.headers['content-length'] === undefined
}

/**
 * Already answered (a body over the limit), or the visitor left. An HTTP/2 response has no
 * `destroyed`: its stream says whether the visitor reset it.
 */
function answeredOrGone(res: ServerResponse): boolean {
  const stream = (res as { stream?: { destroyed: boolean; closed: boolean } }).stream
  return res.writableEnded || res.destroyed === true || stream?.destroyed === true || stream?.closed === true
}

function isHttp2(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 2
}

/**
 * What a visitor's origin connections belong to: its TCP connection, or for HTTP/2 its session
 * (each h2 request's socket is a per-stream proxy). Streams close when it does.
 */
function visitorOf(req: IncomingMessage): VisitorConnection {
  const session = (req as { stream?: { session?: VisitorConnection } }).stream?.session
  if (isHttp2(req) && session !== undefined) return session
  return req.socket as Socket
}

/** RFC 9110 token; field values: tab, visible ASCII, space and obs-text (as Node's writer allows). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/
const INVALID_PATH = /[^\u0021-\u00ff]/

/** The visitor's response head from the origin's; false when it cannot be passed on. */
function writeReplyHead(status: number, message: string, flat: string[], res: ServerResponse): boolean {
  const pairs: Array<[string, string]> = []
  for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([flat[i]!, flat[i + 1]!])
  try {
    res.writeHead(status, message, responseHeadersForVisitor(pairs, { upgrade: false }))
    return true
  } catch {
    // Characters or values Node refuses to write: a clean 502, never a crash.
    return false
  }
}
