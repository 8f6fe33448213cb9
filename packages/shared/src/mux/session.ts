import { EventEmitter } from 'node:events'
import { performance } from 'node:perf_hooks'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { PorchlightError } from '../errors.js'
import { FrameDecoder, type FrameSink } from './codec.js'
import { Flag, FrameType, GoAwayCode, MAX_U32, SESSION_STREAM_ID, SPEC_INITIAL_WINDOW_BYTES, type FrameHeader } from './frames.js'
import { KeepAlive } from './keepalive.js'
import { MUX_DEFAULTS, type MuxLimits, type MuxOptions } from './options.js'
import { PingTracker } from './ping.js'
import { OpenRateLimit } from './open-rate.js'
import { FrameSender } from './sender.js'
import { MuxStream, type StreamHost } from './stream.js'
import { growWithinMs } from './window.js'

/** DATA frames are cut to at most this (and maxFrameBytes) so one stream cannot hog the link. */
const SEND_QUANTUM_BYTES = 256 * 1024
/** After close(), a transport that has not finished flushing is destroyed after this long. */
const CLOSE_GRACE_MS = 1_000

export interface MuxSession {
  on(event: 'stream', listener: (stream: MuxStream) => void): this
  on(event: 'goaway', listener: (code: number) => void): this
  on(event: 'close', listener: (err?: Error) => void): this
  once(event: 'stream', listener: (stream: MuxStream) => void): this
  once(event: 'goaway', listener: (code: number) => void): this
  once(event: 'close', listener: (err?: Error) => void): this
  on(event: string | symbol, listener: (...args: never[]) => void): this
  once(event: string | symbol, listener: (...args: never[]) => void): this
}

/**
 * yamux-wire-compatible multiplexer over one byte transport (a TCP socket or websocketDuplex).
 * Never emits 'error': protocol violations, transport failures and keepalive timeouts close the
 * session, destroy its streams with an error, and emit 'close' (err) exactly once.
 */
export class MuxSession extends EventEmitter {
  private readonly limits: MuxLimits
  private readonly isClient: boolean
  private readonly transport: Duplex
  private readonly decoder: FrameDecoder
  private readonly sender: FrameSender
  private readonly pings: PingTracker
  private readonly streams = new Map<number, MuxStream>()
  /** Inbound streams waiting for a 'stream' listener. */
  private backlog: MuxStream[] = []
  private nextStreamId: number
  private totalWindowBytes = 0
  private localGoAway = false
  private remoteGoAway = false
  private isClosed = false
  private lastFrameMs = Date.now()
  private rttMs = 0
  /** Stream whose DATA payload is being received (null: payload is discarded). */
  private dataTarget: MuxStream | null = null
  private readonly keepAlive: KeepAlive
  private readonly host: StreamHost
  private readonly openRate: OpenRateLimit

  constructor(transport: Duplex, options: MuxOptions) {
    super()
    const limits = { ...MUX_DEFAULTS }
    for (const key of Object.keys(MUX_DEFAULTS) as Array<keyof MuxLimits>) {
      const value = options[key]
      if (value !== undefined) limits[key] = value
    }
    // The peer assumes the spec window; a smaller one cannot be expressed on the wire.
    limits.initialWindowBytes = Math.max(limits.initialWindowBytes, SPEC_INITIAL_WINDOW_BYTES)
    limits.maxWindowBytes = Math.min(Math.max(limits.maxWindowBytes, limits.initialWindowBytes), MAX_U32)
    this.limits = limits
    this.openRate = new OpenRateLimit(limits.maxInboundOpensPerSecond)
    this.isClient = options.role === 'client'
    this.nextStreamId = this.isClient ? 1 : 2
    this.transport = transport
    this.host = {
      requestSend: (s) => this.sender.enqueue(s),
      sendFin: (s) => this.sendControl(FrameType.WindowUpdate, Flag.FIN, s.id, 0),
      sendReset: (s) => this.sendControl(FrameType.WindowUpdate, Flag.RST, s.id, 0),
      creditConsumed: (s) => this.creditConsumed(s),
      release: (s) => this.release(s),
    }
    const sink: FrameSink = {
      onHeader: (h) => this.onHeader(h),
      onPayload: (h, piece) => this.onPayload(h, piece),
      onDataEnd: (h) => this.onDataEnd(h),
    }
    this.decoder = new FrameDecoder({ maxFrameBytes: limits.maxFrameBytes, sink })
    this.sender = new FrameSender(transport, { frameBytes: Math.min(limits.maxFrameBytes, SEND_QUANTUM_BYTES) })
    this.pings = new PingTracker((id, flags) => this.sendControl(FrameType.Ping, flags, SESSION_STREAM_ID, id))
    if (options.onStream) this.on('stream', options.onStream)
    this.on('newListener', this.onNewListener)

    // Frames of one tick are already coalesced (cork/uncork), so Nagle would only add latency
    // (40 ms stalls with delayed ACKs on request/response streams). ws sets this itself.
    const socket = transport as Partial<Pick<Socket, 'setNoDelay'>>
    if (typeof socket.setNoDelay === 'function') socket.setNoDelay(true)
    transport.on('data', this.onTransportData)
    transport.on('end', this.onTransportEnd)
    transport.on('close', this.onTransportEnd)
    transport.on('error', this.onTransportError)
    if (transport.destroyed) {
      process.nextTick(this.onTransportEnd)
    }
    this.keepAlive = new KeepAlive({
      intervalMs: limits.keepAliveIntervalMs,
      timeoutMs: limits.keepAliveTimeoutMs,
      ping: () => {
        if (this.isClosed) return
        this.pings.expire(limits.keepAliveIntervalMs, (ms) => new PorchlightError('PL_ERR_MUX_TIMEOUT', [ms]))
        if (this.pings.outstanding === 0) this.ping().catch(noop)
      },
      lastActivityMs: () => this.lastFrameMs,
      onTimeout: () => this.close(new PorchlightError('PL_ERR_MUX_TIMEOUT', [limits.keepAliveTimeoutMs])),
    })
    this.keepAlive.start()
  }

  get closed(): boolean {
    return this.isClosed
  }

  /** Live streams (both directions not yet closed and not reset); 0 after all ended = no leak. */
  get streamCount(): number {
    return this.streams.size
  }

  /** Date.now() when the last bytes arrived from the peer. */
  get lastActivityMs(): number {
    return this.lastFrameMs
  }

  /** Latest ping round trip (0 until one completed). */
  get roundTripMs(): number {
    return this.rttMs
  }

  /** Opens a stream (the SYN goes out on the next tick, ahead of its data). Throws to the caller. */
  open(): MuxStream {
    if (this.isClosed) throw new PorchlightError('PL_ERR_MUX_CLOSED')
    if (this.localGoAway || this.remoteGoAway) throw new PorchlightError('PL_ERR_MUX_GOAWAY')
    if (this.streams.size >= this.limits.maxStreams) throw new PorchlightError('PL_ERR_MUX_STREAM_LIMIT', [this.limits.maxStreams])
    const id = this.nextStreamId
    if (id > MAX_U32) {
      this.goAway(GoAwayCode.Normal)
      throw new PorchlightError('PL_ERR_MUX_IDS_EXHAUSTED')
    }
    this.nextStreamId += 2
    const stream = this.addStream(id)
    this.sendControl(FrameType.WindowUpdate, Flag.SYN, id, stream.recv.takeOpeningDelta())
    return stream
  }

  /** Tells the peer to open no more streams; existing streams continue. open() throws from now on. */
  goAway(code: number = GoAwayCode.Normal): void {
    if (this.isClosed || this.localGoAway) return
    this.localGoAway = true
    this.sendControl(FrameType.GoAway, 0, SESSION_STREAM_ID, code)
  }

  /** Round trip in ms. Rejects with PL_ERR_MUX_CLOSED if the session closes first. */
  ping(): Promise<number> {
    if (this.isClosed) return Promise.reject(new PorchlightError('PL_ERR_MUX_CLOSED'))
    return this.pings.ping().then((ms) => {
      this.rttMs = ms
      return ms
    })
  }

  /** Destroys every stream (with `err`, or PL_ERR_MUX_CLOSED), sends GoAway, ends the transport. Idempotent. */
  close(err?: Error): void {
    if (this.isClosed) return
    this.isClosed = true
    this.keepAlive.stop()
    this.decoder.stop()
    const t = this.transport
    const transportOpen = !t.destroyed && !t.writableEnded
    if (transportOpen && !this.localGoAway) {
      this.localGoAway = true
      this.sender.sendControl(FrameType.GoAway, 0, SESSION_STREAM_ID, goAwayCodeFor(err))
    }
    if (transportOpen) this.sender.flushControlOnly()
    this.sender.stop()
    this.pings.rejectAll(new PorchlightError('PL_ERR_MUX_CLOSED'))

    const streamErr = err ?? new PorchlightError('PL_ERR_MUX_CLOSED')
    const waiting = new Set(this.backlog)
    this.backlog = []
    for (const stream of [...this.streams.values()]) {
      // Streams nobody accepted have no error listener; they just go away.
      stream.destroy(waiting.has(stream) ? undefined : streamErr)
    }
    this.streams.clear()
    this.totalWindowBytes = 0

    t.off('data', this.onTransportData)
    t.off('end', this.onTransportEnd)
    t.off('close', this.onTransportEnd)
    t.off('error', this.onTransportError)
    t.on('error', noop) // late transport errors after close are expected and harmless
    if (transportOpen && err === undefined) {
      // Normal close: let the GoAway and queued bytes drain, then let go.
      const grace = setTimeout(() => t.destroy(), CLOSE_GRACE_MS)
      grace.unref()
      t.once('finish', () => {
        clearTimeout(grace)
        t.destroy()
      })
      t.end()
    } else if (!t.destroyed) {
      // Timeout, protocol error or a failing transport: the GoAway above was best effort.
      t.destroy(err)
    }
    process.nextTick(() => this.emit('close', err))
  }

  /** Test hook: pretend many streams were opened already (ID exhaustion tests). */
  setNextStreamIdForTesting(id: number): void {
    this.nextStreamId = id
  }

  // ---- transport events ----

  private readonly onTransportData = (chunk: Buffer): void => {
    this.lastFrameMs = Date.now()
    try {
      this.decoder.push(chunk)
    } catch (err) {
      if (isProtocolError(err)) {
        this.close(err)
        return
      }
      // An exception from application code (a 'stream' or 'data' listener): the decoder state
      // cannot be trusted any more, so close, then let it surface as it would without the mux.
      this.close(new PorchlightError('PL_ERR_MUX_CLOSED', [], { cause: err }))
      throw err
    }
  }

  private readonly onTransportEnd = (): void => {
    this.close(new PorchlightError('PL_ERR_MUX_CLOSED'))
  }

  private readonly onTransportError = (err: Error): void => {
    this.close(new PorchlightError('PL_ERR_MUX_CLOSED', [], { cause: err }))
  }

  private readonly onNewListener = (event: string | symbol): void => {
    if (event === 'stream' && this.backlog.length > 0) process.nextTick(this.deliverBacklog)
  }

  private readonly deliverBacklog = (): void => {
    while (this.backlog.length > 0 && this.listenerCount('stream') > 0 && !this.isClosed) {
      const stream = this.backlog.shift()!
      stream.off('error', noop)
      if (!stream.destroyed) this.emit('stream', stream)
    }
  }

  // ---- frames from the peer ----

  private onHeader(h: FrameHeader): void {
    switch (h.type) {
      case FrameType.Data:
      case FrameType.WindowUpdate:
        this.onStreamFrame(h)
        return
      case FrameType.Ping:
        this.onPing(h)
        return
      case FrameType.GoAway:
        if (!this.remoteGoAway) {
          this.remoteGoAway = true
          this.emit('goaway', h.length)
        }
        return
    }
  }

  private onStreamFrame(h: FrameHeader): void {
    this.dataTarget = null
    let stream = this.streams.get(h.streamId)
    if ((h.flags & Flag.SYN) !== 0) {
      if (stream !== undefined) return this.protocolError(`SYN for open stream ${h.streamId}`)
      if (h.streamId === SESSION_STREAM_ID || (h.streamId % 2 === 1) === this.isClient) {
        return this.protocolError(`peer opened stream ${h.streamId} with our parity`)
      }
      stream = this.acceptInbound(h.streamId)
    }
    // Frames for streams we already reset or closed are in flight, not an error: drop them.
    if (stream === undefined) return
    if (h.type === FrameType.WindowUpdate) {
      if (h.length > 0) {
        if (stream.sendWindowBytes + h.length > MAX_U32) {
          // A window beyond what a u32 can describe: this stream's peer is broken, not the session.
          stream.destroy(new PorchlightError('PL_ERR_PROTO_BAD_FRAME', [`send window overflow on stream ${h.streamId}`]))
          return
        }
        stream.onWindowUpdate(h.length)
      }
      this.applyCloseFlags(stream, h.flags)
      return
    }
    if (h.length > 0) {
      if (stream.remoteEnded) {
        stream.destroy(new PorchlightError('PL_ERR_PROTO_BAD_FRAME', [`data after FIN on stream ${h.streamId}`]))
        return
      }
      if (!stream.recv.receive(h.length)) {
        return this.protocolError(`stream ${h.streamId} exceeded its receive window by ${h.length - (stream.recv.grantedBytes - stream.recv.receivedBytes)} bytes`)
      }
    }
    this.dataTarget = stream
  }

  private onPayload(h: FrameHeader, piece: Buffer): void {
    const stream = this.dataTarget
    if (stream !== null && stream.id === h.streamId) stream.onData(piece)
  }

  private onDataEnd(h: FrameHeader): void {
    const stream = this.dataTarget
    this.dataTarget = null
    if (stream !== null && stream.id === h.streamId) this.applyCloseFlags(stream, h.flags)
  }

  private applyCloseFlags(stream: MuxStream, flags: number): void {
    if ((flags & Flag.RST) !== 0) stream.onRemoteReset()
    else if ((flags & Flag.FIN) !== 0) stream.onRemoteFin()
  }

  private onPing(h: FrameHeader): void {
    if ((h.flags & Flag.SYN) !== 0) this.pings.onRequest(h.length, Date.now())
    else if ((h.flags & Flag.ACK) !== 0) {
      const rtt = this.pings.onReply(h.length)
      if (rtt !== undefined) this.rttMs = rtt
    }
  }

  /** Inbound streams refused because the peer opened more per second than allowed. */
  get refusedOpens(): number {
    return this.openRate.refused
  }

  private acceptInbound(id: number): MuxStream | undefined {
    const hasListener = this.listenerCount('stream') > 0
    if (this.localGoAway || this.streams.size >= this.limits.maxStreams || (!hasListener && this.backlog.length >= this.limits.acceptBacklog)) {
      this.sendControl(FrameType.WindowUpdate, Flag.RST, id, 0)
      return undefined
    }
    if (!this.openRate.allow(this.lastFrameMs)) {
      this.sendControl(FrameType.WindowUpdate, Flag.RST, id, 0)
      // Once per window, so a flood costs one event (and one log line) per second, not per SYN.
      if (this.openRate.refusedInWindow === 1) this.emit('throttled', this.limits.maxInboundOpensPerSecond)
      return undefined
    }
    const stream = this.addStream(id)
    // ACK right away, carrying any window beyond the spec's initial one.
    this.sendControl(FrameType.WindowUpdate, Flag.ACK, id, stream.recv.takeOpeningDelta())
    if (hasListener) {
      this.emit('stream', stream)
    } else {
      stream.on('error', noop)
      this.backlog.push(stream)
    }
    return stream
  }

  private addStream(id: number): MuxStream {
    const stream = new MuxStream(this, this.host, id, this.limits.initialWindowBytes, performance.now())
    this.streams.set(id, stream)
    this.totalWindowBytes += stream.recv.windowBytes
    return stream
  }

  private release(stream: MuxStream): void {
    if (this.streams.get(stream.id) !== stream) return
    this.streams.delete(stream.id)
    this.totalWindowBytes -= stream.recv.windowBytes
    if (this.backlog.length > 0) {
      const i = this.backlog.indexOf(stream)
      if (i !== -1) this.backlog.splice(i, 1)
    }
  }

  private creditConsumed(stream: MuxStream): void {
    const recv = stream.recv
    if (this.isClosed || recv.pendingCreditBytes < recv.windowBytes / 2) return
    const before = recv.windowBytes
    const spare = this.limits.maxSessionBufferBytes - this.totalWindowBytes
    const delta = recv.takeUpdate(performance.now(), growWithinMs(this.rttMs), spare, this.limits.maxWindowBytes)
    this.totalWindowBytes += recv.windowBytes - before
    if (delta > 0) this.sendControl(FrameType.WindowUpdate, 0, stream.id, delta)
  }

  private sendControl(type: FrameType, flags: number, streamId: number, length: number): void {
    if (this.isClosed) return
    // Control frames are written even under backpressure; a peer that keeps provoking them
    // (SYN floods, pings) without reading would grow our buffer without bound.
    if (this.transport.writableLength > this.limits.maxSessionBufferBytes) {
      this.close(new PorchlightError('PL_ERR_PROTO_BAD_FRAME', ['peer does not read its side of the link']))
      return
    }
    this.sender.sendControl(type, flags, streamId, length)
  }

  private protocolError(reason: string): void {
    this.close(new PorchlightError('PL_ERR_PROTO_BAD_FRAME', [reason]))
  }
}

function noop(): void {}

function isProtocolError(err: unknown): err is PorchlightError {
  return err instanceof PorchlightError && err.code.startsWith('PL_ERR_PROTO_')
}

function goAwayCodeFor(err: Error | undefined): number {
  if (err === undefined) return GoAwayCode.Normal
  if (isProtocolError(err)) return GoAwayCode.ProtocolError
  return GoAwayCode.InternalError
}
