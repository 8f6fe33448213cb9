import http from 'node:http'
import https from 'node:https'
import { isIP, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { ErrorCode } from '@porchlight/shared/errors'
import type { Logger } from '@porchlight/shared/log'
import { redactUrl } from '@porchlight/shared/log'
import { pipeBoth } from '@porchlight/shared/net'
import { writeHead, type HttpRequestHead, type ReplyHead } from '@porchlight/shared/protocol'
import { isValidReplyHead } from '../stream-head.js'
import { flattenHeaders, originRequestHeaders, relayResponseHeaders, singleHeader, type HeaderList } from './headers.js'

/** What tunnels/http.ts needs from an `http:` tunnel of the agent config. */
export interface HttpTunnelTarget {
  id: string
  /** Origin base URL, e.g. "http://127.0.0.1:3000" (a path prefix is allowed). */
  to: string
  host_header: string | null
}

/** Keep-alive connection pools to local origins, shared by every stream of the agent. */
export interface OriginAgents {
  http: http.Agent
  https: https.Agent
}

export function buildOriginAgents(): OriginAgents {
  const options = { keepAlive: true, keepAliveMsecs: 1_000, maxSockets: 256, maxFreeSockets: 256, noDelay: true }
  return { http: new http.Agent(options), https: new https.Agent(options) }
}

export function destroyOriginAgents(agents: OriginAgents): void {
  agents.http.destroy()
  agents.https.destroy()
}

export interface HttpStreamDeps {
  log: Logger
  agents: OriginAgents
}

/** Methods whose bodyless form Node would otherwise send as an empty chunked body. */
const BODYLESS_DEFAULT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'DELETE', 'CONNECT'])

/**
 * Serves one visitor HTTP request arriving on a relay-opened stream: re-serialises it to the
 * local origin with http.request, answers with a `response` head plus the body, or an `error`
 * head when nothing was received from the origin. Never throws and never crashes on origin
 * trouble; after the response head went out, failures reset the stream so the relay can make the
 * truncation visible.
 */
export function handleHttpStream(stream: Duplex, head: HttpRequestHead, tunnel: HttpTunnelTarget, deps: HttpStreamDeps): void {
  const exchange = new HttpExchange(stream, head, tunnel, deps)
  exchange.start()
}

/** waiting: nothing sent back yet; streaming: response head sent; finished/upgraded: terminal. */
type Phase = 'waiting' | 'streaming' | 'finished' | 'upgraded'

class HttpExchange {
  private readonly startedMs = Date.now()
  private logger: Logger | null = null
  private phase: Phase = 'waiting'
  private req: http.ClientRequest | null = null
  private res: http.IncomingMessage | null = null
  private bodyBytes = 0

  constructor(
    private readonly stream: Duplex,
    private readonly head: HttpRequestHead,
    private readonly tunnel: HttpTunnelTarget,
    private readonly deps: HttpStreamDeps,
  ) {}

  /** Built on first use: a pino child (bindings + redaction setup) costs more than a whole request. */
  private get log(): Logger {
    return (this.logger ??= this.deps.log.child({ tunnel: this.tunnel.id, host: this.head.host }))
  }

  start(): void {
    // The relay resets the stream when the visitor leaves or its origin timeout fires: stop the origin work too.
    this.stream.on('error', (err) => this.abort(err))
    this.stream.on('close', () => {
      // Every stream closes; only one closed early needs an error (and its stack capture).
      if (this.phase === 'waiting' || this.phase === 'streaming') this.abort(new Error('stream closed by the relay'))
    })
    const target = originTarget(this.tunnel)
    if (target instanceof Error) {
      this.replyError('PL_ERR_HTTP_ORIGIN_UNREACHABLE', 'invalid origin URL in the agent config', target)
      return
    }
    const path = joinPath(target.pathname, this.head.url)
    if (path === null) {
      this.replyError('PL_ERR_HTTP_BAD_REQUEST', 'request target must be a path', undefined)
      return
    }
    const contentLength = singleHeader(this.head.headers, 'content-length')
    if (contentLength === undefined || (contentLength !== null && !/^\d{1,15}$/.test(contentLength.trim()))) {
      this.replyError('PL_ERR_HTTP_BAD_REQUEST', 'invalid Content-Length', undefined)
      return
    }
    const limit = contentLength === null ? null : Number(contentLength.trim())
    if (this.head.upgrade || limit !== null) {
      this.send(target, path, limit, null, 0)
      return
    }
    if (this.head.has_body === false) {
      // The relay saw no body: send now rather than wait for the stream's FIN (a round trip per request).
      this.send(target, path, null, null, 0)
      return
    }
    // No Content-Length: the body (if any) ends with the stream's FIN. Peek so a bodyless request
    // goes out without framing and a body goes out chunked, whatever the method.
    peekFirstChunk(this.stream).then(
      (first) => this.send(target, path, null, first, 0),
      (err: unknown) => this.abort(err),
    )
  }

  private send(target: OriginTarget, path: string, limit: number | null, first: Buffer | null, retries: number): void {
    if (this.phase !== 'waiting') return
    const headers: HeaderList = originRequestHeaders(this.head.headers, {
      host: this.tunnel.host_header ?? target.host,
      upgrade: this.head.upgrade,
    })
    if (limit === null && first !== null) headers.push(['transfer-encoding', 'chunked'])
    if (limit === null && first === null && !this.head.upgrade && !BODYLESS_DEFAULT.has(this.head.method.toUpperCase())) {
      headers.push(['content-length', '0'])
    }
    const secure = target.secure
    let req: http.ClientRequest
    try {
      req = (secure ? https : http).request({
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        method: this.head.method,
        path,
        headers: flattenHeaders(headers),
        agent: secure ? this.deps.agents.https : this.deps.agents.http,
        ...target.tls,
      })
    } catch (err) {
      // Invalid header names/values (CR/LF, NUL) throw synchronously: a bad request, not a crash.
      this.replyError('PL_ERR_HTTP_BAD_REQUEST', 'request cannot be forwarded', err)
      return
    }
    this.req = req
    req.on('socket', (socket: Socket) => socket.setNoDelay(true))
    req.on('response', (res) => this.onResponse(req, res))
    if (this.head.upgrade) {
      req.on('upgrade', (res, socket: Socket, rest: Buffer) => this.onUpgrade(res, socket, rest))
    }
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (this.req !== req) return
      // A keep-alive socket the origin closed a moment ago: retry a bodyless request once.
      const bodyless = limit === null && first === null && !this.head.upgrade
      if (this.phase === 'waiting' && retries === 0 && req.reusedSocket && err.code === 'ECONNRESET' && bodyless) {
        this.log.debug({ err }, 'stale keep-alive socket; retrying once')
        this.send(target, path, limit, first, retries + 1)
        return
      }
      if (this.phase === 'waiting') this.replyError(originErrorCode(err), originErrorMessage(err), err)
      else this.fail(err)
    })
    if (this.head.upgrade) {
      req.end()
    } else if (limit !== null) {
      this.pumpBody(req, limit)
    } else if (first !== null) {
      this.bodyBytes += first.length
      req.write(first)
      this.pumpBody(req, null)
    } else {
      req.end()
    }
  }

  /** stream -> origin request with backpressure; a Content-Length is enforced both ways. */
  private pumpBody(req: http.ClientRequest, limit: number | null): void {
    const onData = (chunk: Buffer): void => {
      this.bodyBytes += chunk.length
      if (limit !== null && this.bodyBytes > limit) {
        this.abort(new Error('request body longer than its Content-Length'))
        return
      }
      if (!req.write(chunk)) this.stream.pause()
    }
    const onEnd = (): void => {
      if (limit !== null && this.bodyBytes !== limit) {
        this.abort(new Error('request body shorter than its Content-Length'))
        return
      }
      req.end()
    }
    req.on('drain', () => this.stream.resume())
    // The FIN may have been consumed together with the head (readHead), before we listened.
    if (this.stream.readableEnded) {
      onEnd()
      return
    }
    this.stream.on('data', onData)
    this.stream.once('end', onEnd)
    this.stream.resume()
  }

  private onResponse(req: http.ClientRequest, res: http.IncomingMessage): void {
    if (this.phase !== 'waiting') {
      res.destroy()
      return
    }
    this.res = res
    const status = res.statusCode ?? 0
    const reply = {
      t: 'response' as const,
      status,
      status_message: (res.statusMessage ?? '').slice(0, 1024),
      headers: relayResponseHeaders(res.rawHeaders, status),
    }
    if (!isValidReplyHead(reply) || !this.writeReply(reply)) {
      res.destroy()
      this.replyError('PL_ERR_HTTP_BAD_ORIGIN_RESPONSE', 'origin response headers are too large or invalid', undefined)
      return
    }
    this.phase = 'streaming'
    let bytesOut = 0
    res.on('data', (chunk: Buffer) => {
      bytesOut += chunk.length
      if (!this.stream.write(chunk)) res.pause()
    })
    this.stream.on('drain', () => res.resume())
    res.on('end', () => {
      if (this.phase !== 'streaming') return
      this.phase = 'finished'
      if (this.debugEnabled()) this.log.debug({ status, bytesIn: this.bodyBytes, bytesOut, ms: Date.now() - this.startedMs }, 'origin response complete')
      // Early answer (e.g. 413) before the upload finished: that origin connection cannot be reused.
      if (!req.writableFinished) req.destroy()
      this.stream.end()
      this.discardRest()
    })
    // Origin closed mid-body (or sent garbage after the head): a visible truncation, never a clean end.
    res.on('error', (err) => this.fail(err))
    res.on('close', () => {
      if (!res.complete) this.fail(new Error('origin closed the response before its end'))
    })
  }

  private onUpgrade(res: http.IncomingMessage, socket: Socket, rest: Buffer): void {
    if (this.phase !== 'waiting') {
      socket.destroy()
      return
    }
    socket.setNoDelay(true)
    const reply = {
      t: 'response' as const,
      status: 101,
      status_message: (res.statusMessage ?? '').slice(0, 1024),
      headers: relayResponseHeaders(res.rawHeaders, 101),
    }
    if (!isValidReplyHead(reply) || !this.writeReply(reply)) {
      socket.destroy()
      this.replyError('PL_ERR_HTTP_BAD_ORIGIN_RESPONSE', 'origin upgrade response is invalid', undefined)
      return
    }
    this.phase = 'upgraded'
    if (rest.length > 0) this.stream.write(rest)
    this.log.debug({ status: 101 }, 'upgraded; piping raw bytes')
    pipeBoth(this.stream, socket, (err) => {
      if (err) this.log.debug({ err }, 'upgraded connection ended with an error')
    })
  }

  /** Writes the reply head; false when it cannot be encoded (e.g. larger than a frame allows). */
  private writeReply(reply: ReplyHead): boolean {
    try {
      writeHead(this.stream, reply)
      return true
    } catch (err) {
      this.log.warn({ err }, 'cannot encode reply head')
      return false
    }
  }

  /** Nothing sent back yet: an error head, FIN, and the rest of the request body discarded. */
  private replyError(code: ErrorCode, message: string, err: unknown): void {
    if (this.phase !== 'waiting') return
    this.phase = 'finished'
    this.req?.destroy()
    if (err !== undefined) this.log.warn({ err, method: this.head.method, url: redactUrl(this.head.url), code }, 'origin request failed')
    if (this.stream.destroyed || this.stream.writableEnded) return
    try {
      writeHead(this.stream, { t: 'error', code, message })
      this.stream.end()
    } catch {
      this.stream.destroy()
      return
    }
    this.discardRest()
  }

  /** Response head already sent: reset the stream so the visitor sees a truncation. */
  private fail(err: Error): void {
    if (this.phase !== 'streaming') return
    this.phase = 'finished'
    this.log.warn({ err, method: this.head.method, url: redactUrl(this.head.url) }, 'origin response failed mid-body')
    this.req?.destroy()
    this.res?.destroy()
    this.stream.destroy(err)
  }

  /** The relay went away (reset) or the request body was inconsistent: stop everything quietly. */
  private abort(err: unknown): void {
    if (this.phase === 'finished' || this.phase === 'upgraded') return
    this.phase = 'finished'
    this.req?.destroy()
    this.res?.destroy()
    if (!this.stream.destroyed) this.stream.destroy()
    if (this.debugEnabled()) this.log.debug({ err }, 'stream aborted')
  }

  /** Checked before debug lines so a quiet agent never builds the per-request child logger. */
  private debugEnabled(): boolean {
    return this.deps.log.isLevelEnabled('debug')
  }

  /** Consume and drop what the relay still sends so the stream can close both ways. */
  private discardRest(): void {
    this.stream.removeAllListeners('data')
    this.stream.on('data', () => undefined)
    this.stream.resume()
  }
}

/** A tunnel's `to`, parsed once into what http.request needs. */
interface OriginTarget {
  protocol: 'http:' | 'https:'
  secure: boolean
  /** Without IPv6 brackets. */
  hostname: string
  port: number
  /** host[:port] as written in `to` (the default Host header). */
  host: string
  pathname: string
  /** SNI for https origins. */
  tls: { servername?: string }
}

/** Parsed per tunnel object, not per request (a config reload brings new objects). */
const originTargets = new WeakMap<HttpTunnelTarget, OriginTarget | Error>()

function originTarget(tunnel: HttpTunnelTarget): OriginTarget | Error {
  let target = originTargets.get(tunnel)
  if (target === undefined) {
    target = parseOriginTarget(tunnel)
    originTargets.set(tunnel, target)
  }
  return target
}

function parseOriginTarget(tunnel: HttpTunnelTarget): OriginTarget | Error {
  let url: URL
  try {
    url = new URL(tunnel.to)
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err))
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return new Error(`unsupported origin scheme ${url.protocol}`)
  const secure = url.protocol === 'https:'
  return {
    protocol: url.protocol,
    secure,
    hostname: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
    host: url.host,
    pathname: url.pathname,
    tls: secure ? tlsServername(tunnel.host_header, url.hostname) : {},
  }
}

/** SNI for an https origin: the expected virtual host when given, never an IP literal. */
function tlsServername(hostHeader: string | null, hostname: string): { servername?: string } {
  const candidate = (hostHeader ?? hostname).replace(/:\d+$/, '').replace(/^\[|\]$/g, '')
  return isIP(candidate) === 0 ? { servername: candidate } : {}
}

/** base path of `to` + request path; null for anything but origin-form ("/...") or "*". */
export function joinPath(basePath: string, requestTarget: string): string | null {
  if (requestTarget === '*') return basePath === '/' || basePath === '' ? '*' : null
  if (!requestTarget.startsWith('/')) return null
  const base = basePath.endsWith('/') ? basePath.slice(0, -1) : basePath
  return `${base}${requestTarget}`
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EADDRNOTAVAIL', 'ECONNABORTED'])

/** Connection failures mean "unreachable"; parser errors and resets mean "invalid response". */
export function originErrorCode(err: NodeJS.ErrnoException): ErrorCode {
  if (err.code !== undefined && UNREACHABLE.has(err.code)) return 'PL_ERR_HTTP_ORIGIN_UNREACHABLE'
  if (err.code !== undefined && err.code.startsWith('ERR_TLS')) return 'PL_ERR_HTTP_ORIGIN_UNREACHABLE'
  return 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE'
}

function originErrorMessage(err: NodeJS.ErrnoException): string {
  // No addresses: the relay may show this text to visitors.
  return originErrorCode(err) === 'PL_ERR_HTTP_ORIGIN_UNREACHABLE'
    ? `local server unreachable (${err.code ?? 'error'})`
    : `local server sent an invalid response (${err.code ?? 'error'})`
}

/** First body chunk, or null when the stream ends without one. */
function peekFirstChunk(stream: Duplex): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const tryRead = (): void => {
      const chunk = stream.read() as Buffer | null
      if (chunk !== null) finish(undefined, chunk)
    }
    const onEnd = (): void => finish(undefined, null)
    const onError = (err: Error): void => finish(err)
    const onClose = (): void => finish(new Error('stream closed before the request body'))
    let settled = false
    function finish(err: Error | undefined, value?: Buffer | null): void {
      if (settled) return
      settled = true
      stream.off('readable', tryRead)
      stream.off('end', onEnd)
      stream.off('error', onError)
      stream.off('close', onClose)
      if (err) reject(err)
      else resolve(value ?? null)
    }
    // The FIN may already have been seen while the head was read: 'end' will not fire again.
    if (stream.readableEnded) {
      resolve(null)
      return
    }
    stream.on('readable', tryRead)
    stream.on('end', onEnd)
    stream.on('error', onError)
    stream.on('close', onClose)
    tryRead()
  })
}
