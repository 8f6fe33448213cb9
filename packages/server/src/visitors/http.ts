import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { parseReplyHead, readHead, writeHead, type HttpRequestHead, type OriginSpec, type ReplyHead } from '@porchlight/shared/protocol'
import { codes, isPorchlightError, type ErrorCode } from '@porchlight/shared/errors'
import { pipeBoth } from '@porchlight/shared/net'
import { REDACT_PATHS, redactUrl, type Logger } from '@porchlight/shared/log'
import type { RelayContext } from '../context.js'
import type { HttpRoute } from '../agents/registry.js'
import type { FailureLimiter } from '../access/failure-limit.js'
import { SHARE_PARAM, stripShareParam } from '../access/links.js'
import { clientAddress } from '../access/ips.js'
import { checkRequest, originForm } from './request-checks.js'
import { requestHeadersForOrigin, responseHeadersForVisitor, type ForwardedInfo } from './headers.js'
import { sendOverConnection, type ConnectionExchangeOptions } from './connection-exchange.js'
import { sendPage, writeRawPage } from './pages.js'
import { checkVisitorAccess, openSiteGate, type GateResult } from './access-gate.js'
import { VisitorConnections } from './client-errors.js'
import { forwardRequestBody } from './request-body.js'
import { pipeReplyBody } from './reply-body.js'
import { isOverConnectionCap } from './connection-limit.js'

/**
 * The visitors' HTTP entry: Host -> route -> one mux stream per request. The relay parses each
 * request (Node's strict parser) and re-frames it as a head + body; it never pipes a visitor's
 * raw bytes to an agent, except after an origin answered 101 to a WebSocket upgrade.
 */
export interface VisitorHandlerOptions {
  https: boolean
  /** Ports a Host header may carry (the public listeners' and the defaults). */
  listenerPorts: () => ReadonlySet<number>
  /** Basic-auth failures per IP and site, shared by the HTTP and HTTPS listeners. */
  basicLimiter: FailureLimiter
  /** Answers a request before routing (ACME HTTP-01 challenges); true (or a promise of true) when it did. */
  beforeRouting?: (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>
}

export function createVisitorHandler(ctx: RelayContext, opts: VisitorHandlerOptions) {
  const basicLimiter = opts.basicLimiter
  const log = ctx.log.child({ component: 'visitors' })
  const accessLog = accessLogger(log)
  const connections = new VisitorConnections()

  function route(req: IncomingMessage, accept: string | undefined):
    { ok: true; route: HttpRoute; host: string; clientIp: string; peerIp: string; trustedChain: string | null } | { ok: false; code: ErrorCode; detail?: string; status?: number } {
    const check = checkRequest(req, opts.listenerPorts())
    if (!check.ok) return { ok: false, code: 'PL_ERR_HTTP_BAD_REQUEST', detail: `bad request: ${check.reason}`, ...(check.status ? { status: check.status } : {}) }
    const found = ctx.registry.servingRoute(check.host)
    if (!found) return { ok: false, code: 'PL_ERR_HTTP_UNKNOWN_HOST' }
    void accept
    const peer = req.socket.remoteAddress ?? ''
    const { clientIp, trustedChain } = clientAddress(peer, req.headers['x-forwarded-for'], ctx.config.trust_proxy)
    return { ok: true, route: found, host: check.host, clientIp, peerIp: normalisePeer(peer), trustedChain }
  }

  function openStream(r: HttpRoute): Duplex | ErrorCode {
    if (!r.session || r.session.isClosed) return 'PL_ERR_HTTP_TUNNEL_OFFLINE'
    try {
      return r.session.openStream()
    } catch (err) {
      return isPorchlightError(err) && err.code === 'PL_ERR_MUX_STREAM_LIMIT' ? 'PL_ERR_MUX_STREAM_LIMIT' : 'PL_ERR_HTTP_TUNNEL_OFFLINE'
    }
  }

  type Routed = Extract<ReturnType<typeof route>, { ok: true }>

  /**
   * The one place a request or upgrade is finished, when its connection or response closes: the
   * access line, its metrics and the dashboard's tail. For an upgrade, the time is to the answer
   * and the bytes are those that flowed while it was open.
   */
  function finish(x: { meter: typeof ctx.metrics.http.unrouted; agent: string | undefined; host: string | undefined; method: string | undefined; rawUrl: string | undefined; status: number; elapsedMs: number; bytesIn: number; bytesOut: number }): void {
    const time = Date.now()
    const url = redactUrl(x.rawUrl ?? '')
    const ms = Math.round(x.elapsedMs)
    const { status, bytesIn, bytesOut } = x
    ctx.metrics.countStatus(status)
    x.meter.finish(status, x.elapsedMs / 1000, bytesIn, bytesOut, time)
    accessLog.info({ agent: x.agent, host: x.host, method: x.method, url, status, bytesIn, bytesOut, ms }, 'request')
    ctx.activity.request({ time, agent: x.agent ?? null, host: x.host ?? null, method: x.method ?? '', url, status, bytesIn, bytesOut, ms })
  }

  function forwardedInfo(r: Routed): ForwardedInfo {
    return { clientIp: r.clientIp, peerIp: r.peerIp, trustedChain: r.trustedChain, proto: opts.https ? 'https' : 'http', host: r.host }
  }

  /** The head for one visitor request (or upgrade); the same for both entry paths. */
  function buildHead(req: IncomingMessage, r: Routed, gate: { dropAuthorization: boolean; cookie: string | null | undefined }, upgrade: boolean): HttpRequestHead {
    return {
      t: 'http',
      tunnel: r.route.tunnelId,
      host: r.host,
      method: req.method ?? 'GET',
      url: originUrl(req.url ?? '/'),
      headers: requestHeadersForOrigin(req.rawHeaders, forwardedInfo(r), { upgrade, dropAuthorization: gate.dropAuthorization, cookie: gate.cookie }),
      upgrade,
    }
  }

  /** The agent's answer: an origin response head, or the page to show instead (stream reset). */
  async function awaitResponse(stream: Duplex, r: Routed): Promise<{ reply: Extract<ReplyHead, { t: 'response' }> } | { code: ErrorCode }> {
    let reply: ReplyHead
    try {
      reply = parseReplyHead(await readHead(stream, ctx.config.limits.origin_timeout_ms))
    } catch (err) {
      stream.destroy()
      log.debug({ err: { message: (err as Error).message, code: (err as { code?: string }).code }, host: r.host }, 'no reply head from agent')
      // A link that died (its heartbeat's own "timed out" included) is the tunnel going offline,
      // not a slow local server: check the session before the head's timeout.
      if (r.route.session?.isClosed !== false) return { code: 'PL_ERR_HTTP_TUNNEL_OFFLINE' }
      if ((err as { code?: string }).code === 'PL_ERR_PROTO_HEAD_TIMEOUT') return { code: 'PL_ERR_HTTP_ORIGIN_TIMEOUT' }
      return { code: 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE' }
    }
    if (reply.t === 'response') return { reply }
    stream.destroy()
    log.debug({ host: r.host, reply }, 'agent answered with an error')
    if (reply.t === 'error' && (reply.code === 'PL_ERR_HTTP_ORIGIN_UNREACHABLE' || reply.code === 'PL_ERR_HTTP_TUNNEL_OFFLINE')) return { code: reply.code }
    return { code: 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE' }
  }

  /** One visitor request on its way: what every stage reads and the final accounting sums up. */
  interface Visit {
    req: IncomingMessage
    res: ServerResponse
    accept: string | undefined
    exchange: ReturnType<typeof connections.begin>
    bytesIn: number
    bytesOut: number
    agent: string | undefined
    host: string | undefined
    meter: typeof ctx.metrics.http.unrouted
    /** The visitor left (response closed) before the exchange began: open nothing for it. */
    gone: boolean
  }

  /**
   * A request's stages: route -> gate -> (answers of the relay's own) -> the exchange with the
   * origin (a connection stream, or one stream per request: open -> send -> await reply -> pipe).
   * Each stage either hands on or answers the visitor itself; finish() accounts once, on close.
   */
  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (isOverConnectionCap(req.socket)) {
      // Counted and logged (in summary) when the connection arrived; answered here, then closed.
      res.shouldKeepAlive = false
      sendPage(res, 'PL_ERR_HTTP_TOO_MANY_CONNECTIONS', req.headers.accept, { headers: { 'retry-after': '1' } })
      return
    }
    const v: Visit = { req, res, accept: req.headers.accept, exchange: connections.begin(req, res), bytesIn: 0, bytesOut: 0, agent: undefined, host: undefined, meter: ctx.metrics.http.unrouted, gone: false }
    const started = performance.now()
    res.on('close', () => {
      v.gone = true
      connections.finish(v.exchange)
      finish({ meter: v.meter, agent: v.agent, host: v.host, method: req.method, rawUrl: req.url, status: res.statusCode, elapsedMs: performance.now() - started, bytesIn: v.bytesIn, bytesOut: v.bytesOut })
    })
    const answered = opts.beforeRouting?.(req, res)
    // A promise only for a cluster's HTTP-01 lookup in Redis (validation requests, bounded by its timeout).
    if (answered === true || (answered instanceof Promise && await answered)) return
    const r = routeStage(v)
    if (r === null) return
    const gate = await gateStage(v, r)
    if (gate === null || answeredByRelay(v)) return
    // The gate may have waited (a password check): a visitor who left meanwhile (an h2 stream reset
    // at once, CVE-2023-44487) must not leave a stream and an origin request open behind it.
    if (v.gone) return
    const origin = r.route.origin
    // The agent pipes a stream per visitor connection (a few for an HTTP/2 one); the relay writes and parses.
    if (origin !== undefined) sendOverConnection(connectionExchange(v, r, gate, origin))
    else await perRequestExchange(v, r, gate)
  }

  /** Route by Host; a visitor on plain HTTP of an HTTPS site is redirected. Null: answered. */
  function routeStage(v: Visit): Routed | null {
    const { req, res, accept } = v
    const r = route(req, accept)
    if (!r.ok) {
      if (r.code === 'PL_ERR_HTTP_BAD_REQUEST') res.shouldKeepAlive = false
      sendPage(res, r.code, accept, pageOptions(r))
      return null
    }
    v.agent = r.route.agent
    v.host = r.host
    v.meter = ctx.metrics.http.forRoute(r.route)
    if (!opts.https && ctx.config.redirect_http && ctx.config.listen.public_tls && ctx.publicUrl(r.host).startsWith('https:')) {
      // Visitors belong on HTTPS; publicUrl() already names the HTTPS listener's scheme and port.
      res.shouldKeepAlive = false
      res.writeHead(308, { location: `${ctx.publicUrl(r.host).replace(/\/$/, '')}${originForm(req.url ?? '/')}`, 'content-length': 0 })
      res.end()
      return null
    }
    return r
  }

  /** The site's access rules (share link, basic auth, IP list, certificates). Null: answered. */
  async function gateStage(v: Visit, r: Routed): Promise<Extract<GateResult, { action: 'allow' }> | null> {
    const { req, res, accept } = v
    const gate = openSiteGate(r.route, req) ?? await checkVisitorAccess(ctx, r.route, req, r.clientIp, opts.https, basicLimiter)
    if (gate.action === 'redirect') {
      res.writeHead(302, { location: gate.location, 'set-cookie': gate.setCookie, 'cache-control': 'no-store', 'content-length': 0 })
      res.end()
      return null
    }
    if (gate.action === 'deny') {
      log.info({ agent: v.agent, host: v.host, code: gate.code, reason: gate.reason, ip: r.clientIp }, 'visitor denied')
      if (gate.status === 429) ctx.metrics.limitRefused('basic_auth_failures')
      // A denied request's body is never read: close rather than drain it. Without a body the
      // connection stays usable (a browser retries with credentials; pipelined requests go on).
      if (hasBody(req)) res.shouldKeepAlive = false
      sendPage(res, gate.code, accept, { status: gate.status, headers: gate.headers })
      return null
    }
    return gate
  }

  /** `OPTIONS *` and a declared body over the limit are answered here; nothing reaches the agent. */
  function answeredByRelay(v: Visit): boolean {
    const { req, res } = v
    if (req.url === '*') {
      // `OPTIONS *` asks about the server, which is the relay; no local server is sent a '*' target.
      res.writeHead(204, { allow: ALLOWED_METHODS })
      res.end()
      return true
    }
    const maxBody = ctx.config.limits.max_body_bytes
    if (maxBody !== null && Number(req.headers['content-length'] ?? 0) > maxBody) {
      // Refused on its declared length: the body is never read (and no 100 Continue was sent).
      bodyTooLarge(v)
      return true
    }
    return false
  }

  function bodyTooLarge(v: Visit): void {
    v.res.shouldKeepAlive = false
    ctx.metrics.limitRefused('max_body_bytes')
    sendPage(v.res, 'PL_ERR_HTTP_BODY_TOO_LARGE', v.accept)
  }

  function logStall(v: Visit, blockedMs: number, bytesOut: number): void {
    log.info({ agent: v.agent, host: v.host, code: 'PL_ERR_HTTP_VISITOR_STALLED', blockedMs, bytesOut }, 'visitor stopped reading; connection closed')
  }

  /** The connection-stream exchange (connection-exchange.ts) for this request. */
  function connectionExchange(v: Visit, r: Routed, gate: Extract<GateResult, { action: 'allow' }>, origin: OriginSpec): ConnectionExchangeOptions {
    const { req, res, accept } = v
    // The visitor sent Expect: 100-continue and passed every check: now it may send the body.
    if (expectsContinue(req)) res.writeContinue()
    return {
      req,
      res,
      route: { ...r.route, origin },
      headers: requestHeadersForOrigin(req.rawHeaders, forwardedInfo(r), { upgrade: false, dropAuthorization: gate.dropAuthorization, cookie: gate.cookie }),
      url: originUrl(req.url ?? '/'),
      hasBody: hasBody(req),
      originTimeoutMs: ctx.config.limits.origin_timeout_ms,
      stallTimeoutMs: ctx.config.limits.stall_timeout_ms,
      maxBodyBytes: ctx.config.limits.max_body_bytes,
      onBytesIn: (n) => { v.bytesIn += n },
      onBytesOut: (n) => { v.bytesOut += n },
      onStall: (blockedMs, sent) => logStall(v, blockedMs, sent),
      onBodyTooLarge: () => bodyTooLarge(v),
      onFailure: (code) => {
        if (code === 'PL_ERR_MUX_STREAM_LIMIT') ctx.metrics.limitRefused('mux_streams')
        if (!res.headersSent) sendPage(res, code, accept)
        else res.destroy()
      },
      track: (request) => { v.exchange.stream = request },
    }
  }

  /** One mux stream for this request (HTTP/2 visitors, agents without connection streams). */
  async function perRequestExchange(v: Visit, r: Routed, gate: Extract<GateResult, { action: 'allow' }>): Promise<void> {
    const { req, res, accept } = v
    // open
    const stream = openStream(r.route)
    if (typeof stream === 'string') {
      if (stream === 'PL_ERR_MUX_STREAM_LIMIT') ctx.metrics.limitRefused('mux_streams')
      sendPage(res, stream, accept)
      return
    }
    stream.on('error', () => { /* handled through the reply/pipe paths below */ })
    v.exchange.stream = stream
    // send
    const head: HttpRequestHead = { ...buildHead(req, r, gate, false), has_body: hasBody(req) }
    writeHead(stream, head)
    // The visitor sent Expect: 100-continue and passed every check: now it may send the body.
    if (expectsContinue(req)) res.writeContinue()
    if (head.has_body === true) {
      forwardRequestBody(req, stream, { maxBytes: ctx.config.limits.max_body_bytes, onBytes: (n) => { v.bytesIn += n }, onTooLarge: () => bodyTooLarge(v) })
    } else {
      // No body: FIN right behind the head, so SYN, head and FIN leave in one mux flush.
      stream.end()
    }
    // A visitor who goes away aborts the origin request too (RST on the stream). Judged on the
    // stream, not on res.writableFinished: an h2 stream the visitor reset reports itself finished.
    res.on('close', () => { if (!(stream.readableEnded && stream.writableFinished)) stream.destroy() })
    // await reply
    const answer = await awaitResponse(stream, r)
    // Already answered: a body over the limit, or a body that broke HTTP framing (onClientError).
    if (res.writableEnded) return
    if ('code' in answer) {
      sendPage(res, answer.code, accept)
      return
    }
    const reply = answer.reply
    try {
      const headers = responseHeadersForVisitor(reply.headers, { upgrade: false })
      if (reply.status < 200 || reply.status === 101) throw new Error('unexpected interim status')
      res.writeHead(reply.status, reply.status_message ?? '', headers)
    } catch {
      // Invalid characters or statuses from an origin: a clean 502, never a crash.
      stream.destroy()
      sendPage(res, 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE', accept)
      return
    }
    // pipe
    pipeReplyBody(stream, res, {
      stallTimeoutMs: ctx.config.limits.stall_timeout_ms,
      onBytes: (n) => { v.bytesOut += n },
      onStall: (blockedMs) => logStall(v, blockedMs, v.bytesOut),
    })
  }

  /** CONNECT (proxy tunnelling) is not something a published site serves: 405, then close. */
  function onConnect(req: IncomingMessage, socket: Socket): void {
    socket.on('error', () => undefined)
    log.debug({ target: String(req.url ?? '').slice(0, 256), ip: normalisePeer(req.socket.remoteAddress ?? '') }, 'CONNECT refused')
    ctx.metrics.countStatus(405)
    ctx.metrics.http.unrouted.finish(405, 0, 0, 0, Date.now())
    writeRawPage(socket, 'PL_ERR_HTTP_BAD_REQUEST', req.headers.accept, { status: 405, detail: 'bad request: CONNECT is not supported', headers: { allow: ALLOWED_METHODS } })
  }

  async function onUpgrade(req: IncomingMessage, socket: Socket, headBytes: Buffer): Promise<void> {
    socket.on('error', () => undefined)
    socket.setNoDelay(true)
    const accept = req.headers.accept
    const started = performance.now()
    // Counted once, when the socket closes: the status answered (0: none, the visitor left first),
    // the time to that answer, and for a 101 the bytes that flowed while it was open.
    let status = 0
    let answeredMs = 0
    let upgraded = false
    let meter = ctx.metrics.http.unrouted
    let agent: string | null = null
    let host: string | null = null
    socket.once('close', () => {
      if (status === 0) return
      const bytesIn = upgraded ? socket.bytesRead : 0
      const bytesOut = upgraded ? socket.bytesWritten : 0
      finish({ meter, agent: agent ?? undefined, host: host ?? undefined, method: req.method ?? 'GET', rawUrl: req.url, status, elapsedMs: answeredMs, bytesIn, bytesOut })
    })
    const answered = (code: number): void => {
      status = code
      answeredMs = performance.now() - started
    }
    const page = (code: ErrorCode, options: Parameters<typeof writeRawPage>[3] = {}): void => {
      answered(options.status ?? (codes[code] as { status?: number }).status ?? 500)
      writeRawPage(socket, code, accept, options)
    }
    if (isOverConnectionCap(socket)) return page('PL_ERR_HTTP_TOO_MANY_CONNECTIONS', { headers: { 'retry-after': '1' } })
    const r = route(req, accept)
    if (!r.ok) return page(r.code, pageOptions(r))
    agent = r.route.agent
    host = r.host
    meter = ctx.metrics.http.forRoute(r.route)
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      return page('PL_ERR_HTTP_BAD_REQUEST', { detail: 'bad request: only WebSocket upgrades are supported' })
    }
    const gate = await checkVisitorAccess(ctx, r.route, req, r.clientIp, opts.https, basicLimiter)
    if (gate.action === 'redirect') {
      answered(302)
      socket.end(`HTTP/1.1 302 Found\r\nlocation: ${gate.location}\r\nset-cookie: ${gate.setCookie}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`)
      return
    }
    if (gate.action === 'deny') {
      log.info({ agent: r.route.agent, host: r.host, code: gate.code, reason: gate.reason, ip: r.clientIp }, 'visitor denied')
      if (gate.status === 429) ctx.metrics.limitRefused('basic_auth_failures')
      return page(gate.code, { status: gate.status, headers: gate.headers })
    }
    const stream = openStream(r.route)
    if (typeof stream === 'string') {
      if (stream === 'PL_ERR_MUX_STREAM_LIMIT') ctx.metrics.limitRefused('mux_streams')
      return page(stream)
    }
    stream.on('error', () => socket.destroy())
    writeHead(stream, buildHead(req, r, gate, true))
    socket.on('close', () => { if (!stream.destroyed && !stream.writableEnded) stream.destroy() })
    const answer = await awaitResponse(stream, r)
    if ('code' in answer) return page(answer.code)
    const reply = answer.reply
    const isUpgrade = reply.status === 101
    const headers = responseHeadersForVisitor(reply.headers, { upgrade: isUpgrade })
    const lines: string[] = []
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!
      const value = headers[i + 1]!
      if (/[\r\n\0]/.test(name + value)) {
        stream.destroy()
        return page('PL_ERR_HTTP_BAD_ORIGIN_RESPONSE')
      }
      if (!isUpgrade && name.toLowerCase() === 'content-length') continue
      lines.push(`${name}: ${value}\r\n`)
    }
    const statusText = (reply.status_message ?? '').replace(/[\r\n]/g, '')
    answered(reply.status)
    if (!isUpgrade) {
      // The origin refused to switch: answer as plain HTTP and close; nothing more is piped.
      socket.write(`HTTP/1.1 ${reply.status} ${statusText}\r\n${lines.join('')}connection: close\r\n\r\n`)
      stream.pipe(socket)
      return
    }
    upgraded = true
    socket.write(`HTTP/1.1 101 ${statusText || 'Switching Protocols'}\r\n${lines.join('')}\r\n`)
    if (headBytes.length > 0) stream.write(headBytes)
    pipeBoth(socket, stream)
  }

  return {
    onRequest: (req: IncomingMessage, res: ServerResponse) => {
      onRequest(req, res).catch((err: unknown) => {
        log.error({ err }, 'visitor request failed')
        sendPage(res, 'PL_ERR_INTERNAL', req.headers.accept)
      })
    },
    onUpgrade: (req: IncomingMessage, socket: Socket, head: Buffer) => {
      onUpgrade(req, socket, head).catch((err: unknown) => {
        log.error({ err }, 'visitor upgrade failed')
        socket.destroy()
      })
    },
    onConnect,
    onClientError: connections.onClientError,
  }
}

/** What the relay's `Allow` header names (OPTIONS *, and the 405 for CONNECT). */
const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS'

/**
 * Node's HTTP server options for both public listeners (HTTP and HTTPS), with explicit limits
 * (fastify/Node defaults are not good enough here).
 */
export function visitorServerOptions(limits: RelayContext['config']['limits']): http.ServerOptions {
  return {
    noDelay: true,
    requireHostHeader: true,
    insecureHTTPParser: false,
    maxHeaderSize: 16 * 1024,
    headersTimeout: limits.headers_timeout_ms,
    requestTimeout: limits.request_timeout_ms,
    keepAliveTimeout: 30_000,
    // How often headers/request timeouts are checked (Node's default 30 s would let a slowloris
    // socket live up to headers_timeout_ms + 30 s).
    connectionsCheckingInterval: 1000,
    joinDuplicateHeaders: false,
  }
}

/** Wires a public listener (HTTP or HTTPS) to the visitor handler; the same rules on both. */
export function serveVisitors<S extends http.Server>(server: S, handler: ReturnType<typeof createVisitorHandler>): S {
  // 0: no silent truncation; checkRequest refuses more than MAX_REQUEST_HEADERS with 431.
  server.maxHeadersCount = 0
  server.on('request', handler.onRequest)
  // With this listener Node no longer answers 100 Continue by itself: onRequest sends it only
  // after routing and the site's access rules passed (SECURITY B14).
  server.on('checkContinue', handler.onRequest)
  server.on('upgrade', handler.onUpgrade)
  server.on('connect', handler.onConnect)
  server.on('clientError', handler.onClientError)
  return server
}

/** The plain-HTTP public listener. */
export function createVisitorServer(ctx: RelayContext, handler: ReturnType<typeof createVisitorHandler>): http.Server {
  return serveVisitors(http.createServer(visitorServerOptions(ctx.config.limits)), handler)
}

/**
 * The access line goes through a child that redacts top-level keys only. The parent's wildcard
 * paths ("*.token") make pino run the redactor on every field of every line, several µs per
 * request; this line's fields are all primitives, so only a top-level key could ever match.
 */
function accessLogger(log: Logger): Logger {
  const topLevel = REDACT_PATHS.filter((p) => !p.includes('.') && !p.includes('['))
  return log.child({}, { redact: { paths: topLevel, censor: '[redacted]' } })
}

function pageOptions(r: { detail?: string; status?: number }): { detail?: string; status?: number } {
  return { ...(r.detail ? { detail: r.detail } : {}), ...(r.status ? { status: r.status } : {}) }
}

function normalisePeer(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address
}

/** `Expect: 100-continue` (the only expectation HTTP/1.1 defines). */
function expectsContinue(req: IncomingMessage): boolean {
  const expect = req.headers.expect
  return expect !== undefined && expect.toLowerCase() === '100-continue'
}

/** Node's parser decided this already: a body exists only with a Content-Length or Transfer-Encoding. */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  // HTTP/2: a body is DATA after the HEADERS, with or without a Content-Length (nghttp2 checks one).
  const h2 = (req as { stream?: { endAfterHeaders?: boolean } }).stream
  if (h2 !== undefined) return h2.endAfterHeaders !== true && length !== '0'
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/** Path and query for the origin; a share-link token never reaches it, whatever the site's access. */
function originUrl(raw: string): string {
  const url = originForm(raw)
  return url.includes(SHARE_PARAM) ? stripShareParam(url).url : url
}
