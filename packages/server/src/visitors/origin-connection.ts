import type { Duplex } from 'node:stream'
import { isPorchlightError, type ErrorCode } from '@porchlight/shared/errors'
import { httpParsers, type HttpParser } from '@porchlight/shared/net'
import { MessageDecoder, parseReplyHead, writeHead } from '@porchlight/shared/protocol'
import type { SessionRef } from '../agents/registry.js'
import { CountedBody, countedBodyLength } from './counted-body.js'

/**
 * One visitor connection's way to one tunnel's local server (SECURITY.md rule 2): a mux stream the
 * agent pipes to a connection of its own, the request bytes the relay wrote from its strict parse
 * of the visitor's, and Node's own HTTP parser (llhttp) reading every response before the visitor
 * sees any of it. One request at a time, as the visitor sent them; bytes while none is pending
 * (a confused origin's extra response) close the stream, so they can never answer a request.
 *
 * A state machine rather than Node's http client: no ClientRequest, Agent or IncomingMessage per
 * request, which was most of the relay's CPU per request (docs/performance.md).
 */

/** Opening the stream failed; `code` names the page the visitor gets. */
export class ConnectionStreamError extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message)
    this.name = 'ConnectionStreamError'
  }
}

/**
 * Response-head bounds, at most what the per-request path lets through (its head is one framed
 * message of at most 64 KiB of JSON): a bigger head is a 502, not a head visitors cannot read.
 */
const MAX_RESPONSE_HEADER_BYTES = 32 * 1024
const MAX_RESPONSE_HEADERS = 256
/**
 * An idle stream is closed after this long: it counts against limits.max_streams_per_agent, and
 * local servers often close idle connections after 5 s (Node's default), which would race a reuse.
 */
export const IDLE_STREAM_MS = 4_000
/**
 * Pipelined requests of one visitor connection waiting for the one in flight (Node's server hands
 * them over as it parses them; the origin gets them one at a time). More: the connection is closed.
 */
const MAX_WAITING = 128
/** llhttp's HPE_PAUSED: returned from the head callback, execute() stops right behind the head. */
const PAUSE_PARSER = 21

/** What one exchange is told: a head, body chunks and the end; or one failure; or a cut. */
export interface ExchangeHandlers {
  /** The final response head (flat name/value list); false: it cannot be passed on (a 502 follows). */
  onHead(status: number, message: string, headers: string[]): boolean
  onBody(chunk: Buffer): void
  onEnd(): void
  /** No response head came. `retriable`: nothing at all came back on a stream an earlier request used. */
  onFailure(code: ErrorCode, retriable: boolean): void
  /** The body broke off after the head (reset, agent gone, invalid framing). */
  onCut(): void
}

export interface ExchangeOptions {
  /** A HEAD request: the response has no body whatever its headers say. */
  isHead: boolean
  /** The body follows through write()/finish(); false: the head was the whole request. */
  hasBody: boolean
  /** The body is sent chunked (the visitor's was). */
  chunked: boolean
  timeoutMs: number
}

interface Exchange {
  handlers: ExchangeHandlers
  isHead: boolean
  chunked: boolean
  reused: boolean
  /** Some response byte arrived. */
  heard: boolean
  /** The final head went to the visitor. */
  answered: boolean
  keepAlive: boolean
  requestDone: boolean
  timer: NodeJS.Timeout
}

/** The exchange as the request side drives it: body bytes, its end, or abandoning it. */
export interface OriginRequest {
  write(chunk: Buffer, done: () => void): void
  finish(): void
  abort(): void
  /** abort(), under the name a visitor's framing error calls (http.ts tracks it as its stream). */
  destroy(): void
}

export class OriginConnection {
  private stream: Duplex | null = null
  private parser: HttpParser | null = null
  private current: Exchange | null = null
  /** No byte came from the agent on this stream yet: a framed error head may. */
  private fresh = false
  /** Set inside a parse when the stream must go once the parse returns. */
  private dropAfterParse = false
  /** The current response's Content-Length body, counted here while llhttp waits paused. */
  private counted: CountedBody | null = null
  private headerParts: string[] = []
  private retired = false
  private idle: NodeJS.Timeout | null = null
  private readonly waiting: Array<() => void> = []
  private nextScheduled = false
  private readonly forgetLeaving: () => void

  constructor(
    readonly session: SessionRef,
    private readonly tunnel: string,
    private readonly host: string,
  ) {
    // A stopping agent waits for its streams: close the idle one now and the busy one after its response.
    this.forgetLeaving = session.whenLeaving?.(() => this.retire()) ?? ignore
  }

  /** An exchange is in flight or waiting: a new one must wait its turn (whenFree). */
  get busy(): boolean {
    return this.current !== null || this.waiting.length > 0
  }

  /** Exchanges waiting behind the one in flight. */
  get waitingCount(): number {
    return this.waiting.length
  }

  /** Runs `start` when the exchanges before it are done; false when too many already wait. */
  whenFree(start: () => void): boolean {
    if (this.waiting.length >= MAX_WAITING) return false
    this.waiting.push(start)
    this.scheduleNext()
    return true
  }

  private scheduleNext(): void {
    if (this.nextScheduled || this.waiting.length === 0) return
    this.nextScheduled = true
    // After the parse or the handlers that freed the connection have returned.
    queueMicrotask(() => {
      this.nextScheduled = false
      if (this.current === null) this.waiting.shift()?.()
    })
  }

  /**
   * Sends one request head (the relay's bytes, latin1) and waits for its response. Null when no
   * stream could be opened; the handlers heard why.
   */
  begin(head: string, opts: ExchangeOptions, handlers: ExchangeHandlers): OriginRequest | null {
    // One at a time: an exchange still open here was abandoned by its visitor.
    if (this.current !== null) this.drop()
    const reused = this.stream !== null
    if (!reused) {
      try {
        this.open()
      } catch (err) {
        handlers.onFailure(err instanceof ConnectionStreamError ? err.code : 'PL_ERR_HTTP_TUNNEL_OFFLINE', false)
        return null
      }
    }
    this.stopIdle()
    const stream = this.stream!
    const x: Exchange = {
      handlers, isHead: opts.isHead, chunked: opts.chunked, reused, heard: false, answered: false, keepAlive: false,
      requestDone: !opts.hasBody,
      timer: setTimeout(() => this.timedOut(x), opts.timeoutMs),
    }
    this.current = x
    // The last response may have ended while its visitor's socket was full (paused, never drained).
    stream.resume()
    stream.write(head, 'latin1')
    const live = (): boolean => this.current === x && this.stream === stream
    return {
      write: (chunk, done) => {
        if (!live()) return done()
        if (!x.chunked) return void stream.write(chunk, () => done())
        stream.write(`${chunk.length.toString(16)}\r\n`, 'latin1')
        stream.write(chunk)
        stream.write('\r\n', 'latin1', () => done())
      },
      finish: () => {
        if (!live()) return
        x.requestDone = true
        if (x.chunked) stream.write('0\r\n\r\n', 'latin1')
      },
      abort: () => { if (this.current === x) this.drop() },
      destroy: () => { if (this.current === x) this.drop() },
    }
  }

  /** Backpressure from the visitor's socket, through the mux window to the origin. */
  pauseReading(): void { this.stream?.pause() }
  resumeReading(): void { this.stream?.resume() }

  /** The visitor's connection closed (or this tunnel was evicted from it): nothing more is told. */
  destroy(): void {
    this.forgetLeaving()
    this.waiting.length = 0
    this.drop()
  }

  private retire(): void {
    this.retired = true
    if (this.current === null) this.drop()
  }

  private open(): void {
    const session = this.session
    if (session.isClosed) throw new ConnectionStreamError('PL_ERR_HTTP_TUNNEL_OFFLINE', 'tunnel offline')
    let stream: Duplex
    try {
      stream = session.openStream()
    } catch (err) {
      const limit = isPorchlightError(err) && err.code === 'PL_ERR_MUX_STREAM_LIMIT'
      throw new ConnectionStreamError(limit ? 'PL_ERR_MUX_STREAM_LIMIT' : 'PL_ERR_HTTP_TUNNEL_OFFLINE', 'cannot open a stream')
    }
    stream.on('error', ignore)
    // The request follows at once: the agent answers nothing on success, a framed head on failure.
    writeHead(stream, { t: 'http-conn', tunnel: this.tunnel, host: this.host })
    this.stream = stream
    this.parser = this.newParser()
    this.fresh = true
    stream.on('data', (chunk: Buffer) => { if (this.stream === stream) this.onData(chunk) })
    stream.once('end', () => { if (this.stream === stream) this.onEnd() })
    stream.once('close', () => { if (this.stream === stream) this.onClose() })
  }

  private newParser(): HttpParser {
    const { HTTPParser } = httpParsers!
    const parser = new HTTPParser()
    parser.initialize(HTTPParser.RESPONSE, {}, MAX_RESPONSE_HEADER_BYTES)
    parser[HTTPParser.kOnMessageBegin] = () => {
      // A response with no request pending (or one more behind a finished one): never passed on.
      if (this.current === null) this.dropAfterParse = true
    }
    // Heads of more than 32 fields arrive in parts.
    parser[HTTPParser.kOnHeaders] = (headers: string[]) => { this.headerParts = this.headerParts.concat(headers) }
    parser[HTTPParser.kOnHeadersComplete] = (_major: number, _minor: number, headers: string[] | undefined, _method: number, _url: string | undefined, status: number, message: string | undefined, upgrade: boolean, keepAlive: boolean): number => {
      const all = headers ?? this.headerParts
      this.headerParts = []
      const x = this.current
      if (x === null || x.answered || this.dropAfterParse) {
        this.dropAfterParse = true
        return 1
      }
      // 1xx interim responses are read and not passed on; 101 was never asked for.
      if (status < 200 && status !== 101 && !upgrade) return 0
      clearTimeout(x.timer)
      if (status < 200 || upgrade || all.length > MAX_RESPONSE_HEADERS * 2) return this.refuse(x)
      x.answered = true
      x.keepAlive = keepAlive
      if (!x.handlers.onHead(status, (message ?? '').slice(0, 1024), all)) {
        x.answered = false
        return this.refuse(x)
      }
      if (x.isHead) return 1
      const length = countedBodyLength(status, all)
      if (length === null) return 0
      this.counted = new CountedBody(length)
      return PAUSE_PARSER
    }
    parser[HTTPParser.kOnBody] = (chunk: Buffer) => {
      const x = this.current
      if (x !== null && x.answered && !this.dropAfterParse) x.handlers.onBody(chunk)
    }
    parser[HTTPParser.kOnMessageComplete] = () => {
      const x = this.current
      if (x === null || !x.answered || this.dropAfterParse) return // an interim response ended
      this.responseDone(x)
    }
    return parser
  }

  private responseDone(x: Exchange): void {
    this.current = null
    // Reused only when both sides ended cleanly: an answer before the request body was all
    // sent leaves body bytes the origin would read as a next request.
    if (!x.keepAlive || !x.requestDone || this.retired || this.session.isClosed) this.dropAfterParse = true
    x.handlers.onEnd()
    this.scheduleNext()
  }

  /** The head cannot be passed on: the stream goes, the visitor gets a 502. */
  private refuse(x: Exchange): number {
    this.dropAfterParse = true
    this.current = null
    clearTimeout(x.timer)
    x.handlers.onFailure('PL_ERR_HTTP_BAD_ORIGIN_RESPONSE', false)
    this.scheduleNext()
    return 1
  }

  private onData(chunk: Buffer): void {
    const x = this.current
    if (x === null) return this.drop() // bytes while no request is pending
    x.heard = true
    if (this.fresh) {
      this.fresh = false
      // An HTTP response starts with "H"; the agent's framed error head with its length's high byte, 0.
      if (chunk[0] === 0) return this.lose(x, agentErrorIn(chunk))
    }
    const stream = this.stream
    this.read(chunk)
    if (this.stream !== stream) return
    if (this.dropAfterParse) return this.drop()
    if (this.current === null && this.waiting.length === 0) this.goIdle()
  }

  /** One chunk through llhttp, and through the counted body where the parser stopped for one. */
  private read(chunk: Buffer): void {
    const stream = this.stream
    let rest = chunk
    while (rest.length > 0 && !this.dropAfterParse) {
      if (this.counted !== null) {
        rest = this.readCounted(this.counted, rest)
        if (this.stream !== stream) return
        continue
      }
      const x = this.current
      const result = this.parser!.execute(rest)
      if (this.stream !== stream) return
      if (!(result instanceof Error)) return
      if (this.counted !== null && result.code === 'HPE_PAUSED') {
        rest = rest.subarray(result.bytesParsed)
        continue
      }
      if (x !== null && this.current === x) return this.lose(x, 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE')
      return this.drop()
    }
  }

  /**
   * Passes on the body's part of `chunk` and returns what follows it. Bytes past the body go to a
   * fresh parser with no request pending, as llhttp would read them after the message: a stray
   * line break is skipped, anything else closes the stream.
   */
  private readCounted(body: CountedBody, chunk: Buffer): Buffer {
    const x = this.current!
    const piece = body.take(chunk)
    if (piece.length > 0) x.handlers.onBody(piece)
    if (!body.done || this.counted !== body) return EMPTY
    this.counted = null
    this.parser!.initialize(httpParsers!.HTTPParser.RESPONSE, {}, MAX_RESPONSE_HEADER_BYTES)
    this.responseDone(x)
    return chunk.subarray(piece.length)
  }

  /** The agent ended the stream (its local server closed the connection). */
  private onEnd(): void {
    const x = this.current
    // Short of its Content-Length: cut.
    if (this.counted !== null && x !== null) return this.lose(x, undefined)
    // A response delimited by the close ends here.
    const result = this.parser!.finish()
    if (this.current === x && x !== null) return this.lose(x, result instanceof Error ? 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE' : undefined)
    this.drop()
  }

  /** Reset, destroyed, or the link under it died. */
  private onClose(): void {
    const x = this.current
    if (x === null) return this.drop()
    this.lose(x, undefined)
  }

  private timedOut(x: Exchange): void {
    if (this.current !== x) return
    this.drop()
    x.handlers.onFailure('PL_ERR_HTTP_ORIGIN_TIMEOUT', false)
  }

  /** The exchange ends without its response: a failure before the head, a cut after it. */
  private lose(x: Exchange, code: ErrorCode | undefined): void {
    this.drop()
    clearTimeout(x.timer)
    if (x.answered) return x.handlers.onCut()
    if (code !== undefined) return x.handlers.onFailure(code, false)
    // Decided a turn later: a link that dies destroys its streams first and reports itself closed
    // a tick after, and that is the tunnel going offline, not a broken origin.
    const retriable = x.reused && !x.heard
    setImmediate(() => x.handlers.onFailure(this.session.isClosed ? 'PL_ERR_HTTP_TUNNEL_OFFLINE' : 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE', retriable))
  }

  private goIdle(): void {
    this.stopIdle()
    this.idle = setTimeout(() => { if (this.current === null) this.drop() }, IDLE_STREAM_MS)
    this.idle.unref()
  }

  private stopIdle(): void {
    if (this.idle !== null) clearTimeout(this.idle)
    this.idle = null
  }

  /** Closes the stream (the agent closes its origin connection) and forgets the exchange. */
  private drop(): void {
    const stream = this.stream
    const parser = this.parser
    const x = this.current
    this.stream = null
    this.parser = null
    this.current = null
    this.dropAfterParse = false
    this.counted = null
    this.headerParts = []
    if (x !== null) clearTimeout(x.timer)
    this.stopIdle()
    stream?.destroy()
    // Not while it may still be inside execute(): freed once the parse has returned.
    if (parser !== null) queueMicrotask(() => parser.close())
    this.scheduleNext()
  }
}

/** What the agent answered instead of the origin's bytes (its dial failed, or no such tunnel). */
function agentErrorIn(chunk: Buffer): ErrorCode {
  try {
    const [message] = new MessageDecoder().push(chunk, 1)
    if (message === undefined) return 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE'
    const reply = parseReplyHead(message)
    const code = reply.t === 'error' ? reply.code : ''
    return code === 'PL_ERR_HTTP_ORIGIN_UNREACHABLE' || code === 'PL_ERR_HTTP_TUNNEL_OFFLINE' ? code : 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE'
  } catch {
    return 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE'
  }
}

const EMPTY = Buffer.alloc(0)

function ignore(): void {}
