import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { ErrorCode } from '@porchlight/shared/errors'
import type { OriginSpec } from '@porchlight/shared/protocol'
import type { HttpRoute } from '../agents/registry.js'
import { ConnectionStreamError, connectionStreamAgent } from './connection-streams.js'
import { responseHeadersForVisitor } from './headers.js'
import { forwardRequestBody } from './request-body.js'
import { pipeReplyBody } from './reply-body.js'

/** Methods Node's client sends without framing when they have no body (others get Content-Length: 0). */
const BODYLESS_DEFAULT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'DELETE', 'CONNECT'])
/**
 * Response-head bounds, at most what the per-request path lets through (its head is one framed
 * message of at most 64 KiB of JSON): a bigger head is a 502, not a head visitors cannot read.
 */
const MAX_RESPONSE_HEADER_BYTES = 32 * 1024
const MAX_RESPONSE_HEADERS = 256

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
 * One visitor request over its connection's stream (connection-streams.ts): send (Node's client
 * writes the canonical request) → await the reply head (parsed by Node's strict client parser,
 * bounded by origin_timeout_ms) → pipe the body with backpressure. Each stage either hands on
 * or ends with one error code; the caller's res 'close' handler accounts for the request.
 */
export function sendOverConnection(o: ConnectionExchangeOptions, retried = false): void {
  const agent = connectionStreamAgent(o.req.socket as Socket, o.route, o.originTimeoutMs)
  if (agent === null) {
    o.onFailure('PL_ERR_HTTP_TUNNEL_OFFLINE')
    return
  }
  const method = o.req.method ?? 'GET'
  let request: http.ClientRequest
  try {
    request = http.request({
      agent,
      method,
      path: `${o.route.origin.path}${o.url}`,
      headers: originHeaders(o, method),
      setHost: false,
      maxHeaderSize: MAX_RESPONSE_HEADER_BYTES,
      // Unique per tunnel only (the agent holds one stream); never dialled.
      host: 'origin.invalid',
      port: 80,
    })
  } catch {
    // Invalid characters in a header Node's client refuses to write: not the origin's fault.
    o.onFailure('PL_ERR_HTTP_BAD_REQUEST')
    return
  }
  o.track(request)
  let answered = false
  const timer = setTimeout(() => request.destroy(new ConnectionStreamError('PL_ERR_HTTP_ORIGIN_TIMEOUT', 'no response in time')), o.originTimeoutMs)
  request.on('error', (err: NodeJS.ErrnoException) => {
    clearTimeout(timer)
    if (answered) return // after the head: pipeReplyBody cuts the visitor's response
    if (o.res.writableEnded || o.res.destroyed) return
    if (!retried && request.reusedSocket && !o.hasBody && (method === 'GET' || method === 'HEAD') && err.code === 'ECONNRESET') {
      // The origin closed this keep-alive connection just as the request went out: once more, on a new one.
      sendOverConnection(o, true)
      return
    }
    // Decided a turn later: a link that died destroys its streams first and reports itself
    // closed a tick after, and that is the tunnel going offline, not a broken origin.
    setImmediate(() => { if (!o.res.writableEnded && !o.res.destroyed) o.onFailure(failureCode(err, o.route)) })
  })
  request.on('response', (reply) => {
    clearTimeout(timer)
    answered = true
    if (o.res.writableEnded || o.res.destroyed) {
      // Already answered (a body over the limit) or the visitor left.
      request.destroy()
      return
    }
    if (!writeReplyHead(reply, o.res)) {
      request.destroy()
      o.onFailure('PL_ERR_HTTP_BAD_ORIGIN_RESPONSE')
      return
    }
    let bytesOut = 0
    pipeReplyBody(reply, o.res, {
      stallTimeoutMs: o.stallTimeoutMs,
      onBytes: (n) => { bytesOut += n; o.onBytesOut(n) },
      onStall: (blockedMs) => o.onStall(blockedMs, bytesOut),
    })
  })
  // A visitor who goes away aborts the origin request, and with it the connection stream.
  o.res.once('close', () => { if (!o.res.writableFinished) request.destroy() })
  if (o.hasBody) {
    forwardRequestBody(o.req, request, { maxBytes: o.maxBodyBytes, onBytes: o.onBytesIn, onTooLarge: o.onBodyTooLarge })
  } else {
    request.end()
  }
}

/**
 * The origin's headers: the relay's hygiene already ran; here Host becomes the tunnel's
 * (host_header or the `to` URL's), Expect goes (the relay answered it) and the body's framing is
 * the one Node's parser decided for the visitor's request, never left to the method's default.
 */
function originHeaders(o: ConnectionExchangeOptions, method: string): string[] {
  const flat: string[] = ['Host', o.route.origin.host]
  for (const [name, value] of o.headers) {
    const lower = name.toLowerCase()
    if (lower === 'host' || lower === 'expect') continue
    flat.push(name, value)
  }
  if (o.req.headers['transfer-encoding'] !== undefined) flat.push('Transfer-Encoding', 'chunked')
  else if (!o.hasBody && o.req.headers['content-length'] === undefined && !BODYLESS_DEFAULT.has(method.toUpperCase())) flat.push('Content-Length', '0')
  return flat
}

/** The visitor's response head from the origin's; false when it cannot be passed on. */
function writeReplyHead(reply: IncomingMessage, res: ServerResponse): boolean {
  const status = reply.statusCode ?? 0
  const raw = reply.rawHeaders
  if (status < 200 || raw.length > MAX_RESPONSE_HEADERS * 2) return false
  const pairs: Array<[string, string]> = []
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i]!, raw[i + 1]!])
  try {
    res.writeHead(status, (reply.statusMessage ?? '').slice(0, 1024), responseHeadersForVisitor(pairs, { upgrade: false }))
    return true
  } catch {
    // Characters or values Node refuses to write: a clean 502, never a crash.
    return false
  }
}

function failureCode(err: NodeJS.ErrnoException, route: HttpRoute): ErrorCode {
  if (err instanceof ConnectionStreamError) return err.code
  // The link died under the request: the tunnel is offline, not the origin broken.
  if (route.session === null || route.session.isClosed) return 'PL_ERR_HTTP_TUNNEL_OFFLINE'
  return 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE'
}
