import http2 from 'node:http2'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TLSSocket } from 'node:tls'
import type { Logger } from '@porchlight/shared/log'
import { sendPage } from './pages.js'
import { MAX_REQUEST_HEADERS } from './request-checks.js'
import type { createVisitorHandler } from './http.js'

/**
 * HTTP/2 for visitors on the public HTTPS listener (ALPN `h2`). The TLS listener stays the HTTP/1.1
 * one; a connection that chose h2 is handed to this server, whose requests are adapted to the same
 * handler (routing, access rules, limits, logs) and reach the origin as HTTP/1.1.
 *
 * nghttp2 does the strict part of the parse: it refuses connection-specific headers, CR/LF/NUL in
 * names and values, bad pseudo-headers and a Content-Length the DATA frames do not match (stream
 * reset before the request completes, so the relay never FINs a shorter body), and it bounds the
 * floods (rapid reset, CONTINUATION, PING/SETTINGS): the options below set the limits it enforces.
 */
export interface H2Limits {
  headers_timeout_ms: number
}

/** Concurrent streams one visitor connection may open (RFC 9113 recommends at least 100). */
export const H2_MAX_CONCURRENT_STREAMS = 100
/** The same header budget as HTTP/1.1 (maxHeaderSize 16 KiB). */
export const H2_MAX_HEADER_LIST_SIZE = 16 * 1024

export function createVisitorH2Server(handler: ReturnType<typeof createVisitorHandler>, limits: H2Limits, log: Logger): http2.Http2Server {
  const server = http2.createServer({
    settings: {
      maxConcurrentStreams: H2_MAX_CONCURRENT_STREAMS,
      maxHeaderListSize: H2_MAX_HEADER_LIST_SIZE,
      // WebSocket stays on HTTP/1.1: no RFC 8441 extended CONNECT.
      enableConnectProtocol: false,
      enablePush: false,
    },
    maxHeaderListPairs: MAX_REQUEST_HEADERS + 8,
    maxSessionMemory: 10, // MiB per session before new streams are refused
    maxOutstandingPings: 10,
    maxSettings: 32,
    // Streams a peer resets or gets refused beyond these end the session (rapid reset).
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    peerMaxConcurrentStreams: H2_MAX_CONCURRENT_STREAMS,
  })
  // An idle h2 connection is closed like an idle HTTP/1.1 keep-alive one.
  server.setTimeout(30_000)
  server.on('timeout', (session: http2.ServerHttp2Session) => session.close())
  server.on('sessionError', (err: NodeJS.ErrnoException) => log.debug({ err: { message: err.message, code: err.code } }, 'visitor h2 session error'))
  server.on('session', (session: http2.ServerHttp2Session) => {
    session.on('error', () => undefined)
    // A session that never sends a request head in time is closed, as headersTimeout does for h1.
    const first = setTimeout(() => session.destroy(), limits.headers_timeout_ms)
    first.unref()
    session.once('stream', () => clearTimeout(first))
    session.once('close', () => clearTimeout(first))
  })
  const onRequest = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void => {
    // A stream reset with its HEADERS (rapid reset) is already closed here, and its 'close' has
    // fired: nothing may be opened for it, or each would hold an agent stream and an origin request.
    if (req.stream.destroyed || req.stream.closed) return
    const adapted = adaptRequest(req)
    if (adapted === MALFORMED) {
      // RFC 9113 §8.1.1: a malformed request is a stream error of type PROTOCOL_ERROR.
      req.stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR)
      return
    }
    if (typeof adapted === 'string') {
      sendPage(res as unknown as ServerResponse, 'PL_ERR_HTTP_BAD_REQUEST', req.headers.accept, { detail: `bad request: ${adapted}` })
      return
    }
    handler.onRequest(adapted, res as unknown as ServerResponse)
  }
  server.on('request', onRequest)
  // As on HTTP/1.1: no automatic 100 Continue; the handler sends it after the access rules passed.
  server.on('checkContinue', onRequest)
  return server
}

/**
 * The h2 request as the HTTP/1.1 handler reads it: raw headers without pseudo-headers, and one
 * Host. `:authority` and Host are one truth: both present and different is malformed, as is CR, LF
 * or NUL in any field (nghttp2 lets them through; HTTP/1.1 to the origin must never see them).
 */
const MALFORMED = 'malformed'
/** Characters no header field may carry on to HTTP/1.1 (SECURITY.md rule 1). */
const FORBIDDEN_IN_FIELD = /[\r\n\0]/

export function adaptRequest(req: http2.Http2ServerRequest): IncomingMessage | string {
  const raw = req.rawHeaders
  const headers: string[] = []
  let authority: string | undefined
  let host: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    const value = raw[i + 1]!
    if (FORBIDDEN_IN_FIELD.test(name) || FORBIDDEN_IN_FIELD.test(value)) return MALFORMED
    if (name === ':authority') authority = value
    if (name.startsWith(':')) continue
    if (name === 'host') host = value
    headers.push(name, value)
  }
  if (req.method === 'CONNECT') return 'CONNECT is not supported'
  if (authority !== undefined && host !== undefined && authority.toLowerCase() !== host.toLowerCase()) return MALFORMED
  if (host === undefined) {
    if (authority === undefined) return 'missing :authority'
    headers.unshift('host', authority)
    req.headers.host = authority
  }
  Object.defineProperty(req, 'rawHeaders', { value: headers, configurable: true })
  return req as unknown as IncomingMessage
}

/** Hands a TLS connection whose ALPN chose h2 to the HTTP/2 server; the rest stay HTTP/1.1. */
export function routeH2Connections(tlsServer: import('node:https').Server, h2: http2.Http2Server): void {
  const http1 = tlsServer.listeners('secureConnection') as Array<(socket: TLSSocket) => void>
  tlsServer.removeAllListeners('secureConnection')
  tlsServer.on('secureConnection', (socket: TLSSocket) => {
    if (socket.alpnProtocol === 'h2') {
      h2.emit('connection', socket)
      return
    }
    for (const listener of http1) listener.call(tlsServer, socket)
  })
}
