import http from 'node:http'
import https from 'node:https'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { ErrorCode } from '@porchlight/shared/errors'
import type { Logger } from '@porchlight/shared/log'
import { redactUrl } from '@porchlight/shared/log'
import { pipeBoth } from '@porchlight/shared/net'
import { isValidReplyHead, writeHead, type HttpRequestHead, type ReplyHead } from '@porchlight/shared/protocol'
import { BodySource } from './body-source.js'
import { flattenHeaders, originRequestHeaders, relayResponseHeaders, singleHeader, type HeaderList } from './headers.js'
import { loadUndici, originTarget, type HttpTunnelTarget, type OriginAgents, type OriginTarget } from './origins.js'
import type { ExchangeProbe, TrafficHook } from '../inspector/traffic.js'

export { buildOriginAgents, destroyOriginAgents, type HttpTunnelTarget, type OriginAgents } from './origins.js'

export interface HttpStreamDeps {
  log: Logger
  agents: OriginAgents
  /** The inspector / terminal view / counters; absent when nobody watches (then nothing is recorded). */
  traffic?: TrafficHook | null
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
  /** Stops whatever origin work is in flight (request, response, connection). */
  private cancelOrigin: (() => void) | null = null
  private bodyBytes = 0
  private bytesOut = 0
  private status = 0
  /** Set only while something watches the traffic. */
  private probe: ExchangeProbe | null = null

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
    const loading = loadUndici()
    if (loading !== null) {
      // The first per-request exchange of this process loads its HTTP client, then starts.
      loading.then(() => this.start(), (err: unknown) => this.abort(err))
      return
    }
    const traffic = this.deps.traffic
    if (traffic != null) {
      this.probe = traffic.begin({
        tunnel: this.tunnel.id,
        host: this.head.host,
        method: this.head.method,
        path: this.head.url,
        headers: this.head.headers.map(([name, value]): [string, string] => [name, value]),
      })
    }
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
    if (this.head.upgrade) {
      this.sendUpgrade(target, path, headers)
      return
    }
    const bodyless = limit === null && first === null
    if (bodyless && !BODYLESS_DEFAULT.has(this.head.method.toUpperCase())) headers.push(['content-length', '0'])
    const body = bodyless ? null : new BodySource(this.stream, first, limit, (chunk) => {
      this.bodyBytes += chunk.length
      this.probe?.requestBody(chunk)
    })
    // A body that breaks its Content-Length (or a relay that resets mid-upload) ends the exchange.
    body?.on('error', (err) => this.abort(err))
    const rawHeaders: string[] = []
    for (const [name, value] of headers) rawHeaders.push(name, value)
    try {
      this.deps.agents.pool(target).dispatch(
        { origin: target.origin, method: this.head.method, path, headers: rawHeaders, body },
        new OriginResponseHandler(this, () => this.retry(target, path, limit, first, retries)),
      )
    } catch (err) {
      this.replyError('PL_ERR_HTTP_BAD_REQUEST', 'request cannot be forwarded', err)
    }
  }

  /** A keep-alive connection the origin closed a moment ago: a bodyless GET/HEAD is retried once. */
  private retry(target: OriginTarget, path: string, limit: number | null, first: Buffer | null, retries: number): boolean {
    const method = this.head.method.toUpperCase()
    if (retries > 0 || limit !== null || first !== null || (method !== 'GET' && method !== 'HEAD')) return false
    this.log.debug('origin closed a keep-alive connection; retrying once')
    this.send(target, path, limit, first, retries + 1)
    return true
  }

  /** WebSocket and friends: Node's client hands over the raw socket after the origin's 101. */
  private sendUpgrade(target: OriginTarget, path: string, headers: HeaderList): void {
    let req: http.ClientRequest
    try {
      req = (target.secure ? https : http).request({
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        method: this.head.method,
        path,
        headers: flattenHeaders(headers),
        agent: target.secure ? this.deps.agents.https : this.deps.agents.http,
        ...target.tls,
      })
    } catch (err) {
      // Invalid header names/values (CR/LF, NUL) throw synchronously: a bad request, not a crash.
      this.replyError('PL_ERR_HTTP_BAD_REQUEST', 'request cannot be forwarded', err)
      return
    }
    this.cancelOrigin = () => req.destroy()
    req.on('socket', (socket: Socket) => socket.setNoDelay(true))
    req.on('response', (res) => this.onRefusedUpgrade(res))
    req.on('upgrade', (res, socket: Socket, rest: Buffer) => this.onUpgrade(res, socket, rest))
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (this.phase === 'waiting') this.replyError(originErrorCode(err), originErrorMessage(err), err)
      else this.fail(err)
    })
    req.end()
  }

  /** The origin answered an upgrade request with a plain response (e.g. 426). */
  private onRefusedUpgrade(res: http.IncomingMessage): void {
    if (!this.startResponse(res.statusCode ?? 0, res.rawHeaders, res.statusMessage ?? '')) {
      res.destroy()
      return
    }
    this.cancelOrigin = () => res.destroy()
    res.on('data', (chunk: Buffer) => {
      if (!this.writeBody(chunk, () => res.resume())) res.pause()
    })
    res.on('end', () => this.finishResponse())
    res.on('error', (err) => this.fail(err))
    res.on('close', () => {
      if (!res.complete) this.fail(new Error('origin closed the response before its end'))
    })
  }

  /** Sends the reply head; false (and an error head instead) when the origin's head is unusable. */
  startResponse(status: number, rawHeaders: string[], statusMessage: string): boolean {
    if (this.phase !== 'waiting') return false
    const reply = {
      t: 'response' as const,
      status,
      status_message: statusMessage.slice(0, 1024),
      headers: relayResponseHeaders(rawHeaders, status),
    }
    if (!isValidReplyHead(reply)) {
      this.replyError('PL_ERR_HTTP_BAD_ORIGIN_RESPONSE', 'origin response headers are too large or invalid', undefined)
      return false
    }
    // Head, the body that came with it and the end leave as one mux write (one DATA frame with
    // FIN for a small response); a body still on its way follows after this tick.
    this.stream.cork()
    process.nextTick(uncork, this.stream)
    if (!this.writeReply(reply)) {
      this.replyError('PL_ERR_HTTP_BAD_ORIGIN_RESPONSE', 'origin response headers are too large or invalid', undefined)
      return false
    }
    this.phase = 'streaming'
    this.status = status
    this.probe?.response(status, reply.status_message, reply.headers)
    return true
  }

  /** One body chunk to the relay; false when the stream is full (`resume` runs on its drain). */
  writeBody(chunk: Buffer, resume: () => void): boolean {
    if (this.phase !== 'streaming') return true
    this.bytesOut += chunk.length
    this.probe?.responseBody(chunk)
    if (this.stream.write(chunk)) return true
    this.stream.once('drain', resume)
    return false
  }

  finishResponse(): void {
    if (this.phase !== 'streaming') return
    this.phase = 'finished'
    this.probe?.end()
    if (this.debugEnabled()) this.log.debug({ status: this.status, bytesIn: this.bodyBytes, bytesOut: this.bytesOut, ms: Date.now() - this.startedMs }, 'origin response complete')
    this.stream.end()
    this.discardRest()
  }

  /** The origin client failed: before the head an error head (or one retry), after it a reset. */
  originFailed(err: NodeJS.ErrnoException, retry: () => boolean): void {
    if (this.phase === 'waiting') {
      if (isStaleConnection(err) && retry()) return
      if (err.code === 'UND_ERR_INVALID_ARG') this.replyError('PL_ERR_HTTP_BAD_REQUEST', 'request cannot be forwarded', err)
      else this.replyError(originErrorCode(err), originErrorMessage(err), err)
    } else {
      this.fail(err)
    }
  }

  setCancel(cancel: (err: Error) => void): void {
    this.cancelOrigin = () => cancel(new Error('stream closed by the relay'))
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
    this.probe?.response(101, reply.status_message, reply.headers)
    this.probe?.end()
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
    this.probe?.end({ code, message })
    this.cancelOrigin?.()
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
    this.probe?.end({ code: 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE', message: 'the local server failed mid-response' })
    this.log.warn({ err, method: this.head.method, url: redactUrl(this.head.url) }, 'origin response failed mid-body')
    this.cancelOrigin?.()
    this.stream.destroy(err)
  }

  /** The relay went away (reset) or the request body was inconsistent: stop everything quietly. */
  private abort(err: unknown): void {
    if (this.phase === 'finished' || this.phase === 'upgraded') return
    this.phase = 'finished'
    this.probe?.end({ code: 'PL_ERR_MUX_STREAM_RESET', message: 'the visitor or the relay ended the request' })
    this.cancelOrigin?.()
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

/** base path of `to` + request path; null for anything but origin-form ("/...") or "*". */
export function joinPath(basePath: string, requestTarget: string): string | null {
  // Origin-form only: the relay answers `OPTIONS *` itself, and the origin client cannot send '*'.
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

/**
 * undici's callbacks for one origin request (its controller API: the onHeaders/onData callbacks
 * are deprecated), handed to the exchange that owns the stream.
 */
class OriginResponseHandler implements Dispatcher.DispatchHandler {
  private settled = false
  private controller: Dispatcher.DispatchController | null = null
  /** The stream drained: undici reads the origin again. */
  private readonly resumeOrigin = (): void => this.controller?.resume()

  constructor(
    private readonly exchange: HttpExchange,
    private readonly retry: () => boolean,
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller
    this.exchange.setCancel((err) => controller.abort(err))
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    // Informational answers (103 Early Hints) are not forwarded; the final one follows.
    if (statusCode < 200) return
    // The raw list keeps the origin's order and repeats; the parsed object is the fallback.
    const raw = Array.isArray(controller.rawHeaders) ? rawHeaderStrings(controller.rawHeaders) : flatHeaders(headers)
    if (!this.exchange.startResponse(statusCode, raw, statusMessage ?? '')) {
      this.settled = true
      controller.pause()
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.exchange.writeBody(chunk, this.resumeOrigin)) controller.pause()
  }

  onResponseEnd(): void {
    this.settled = true
    this.exchange.finishResponse()
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.settled) return
    this.settled = true
    this.exchange.originFailed(err, this.retry)
  }
}

/** A parsed header object as a flat name/value list (repeated names become repeated entries). */
function flatHeaders(headers: Record<string, string | string[] | undefined>): string[] {
  const out: string[] = []
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue
    for (const v of Array.isArray(value) ? value : [value]) out.push(name, v)
  }
  return out
}

function uncork(stream: Duplex): void {
  stream.uncork()
}

/** Header names and values as strings; latin1 keeps every byte an origin sent. */
function rawHeaderStrings(headers: ReadonlyArray<Buffer | string>): string[] {
  const out: string[] = new Array<string>(headers.length)
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!
    out[i] = typeof h === 'string' ? h : h.toString('latin1')
  }
  return out
}

/** The origin closed an idle keep-alive connection just as a request went out on it. */
function isStaleConnection(err: NodeJS.ErrnoException): boolean {
  return err.code === 'ECONNRESET' || err.code === 'UND_ERR_SOCKET' || err.code === 'EPIPE'
}
