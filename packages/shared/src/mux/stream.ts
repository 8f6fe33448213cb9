import { Duplex } from 'node:stream'
import { PorchlightError } from '../errors.js'
import { SPEC_INITIAL_WINDOW_BYTES } from './frames.js'
import type { MuxSession } from './session.js'
import type { DataFrame, SendSource } from './sender.js'
import { ReceiveWindow } from './window.js'

/** What a stream needs from its session; implemented privately by MuxSession. */
export interface StreamHost {
  /** The stream has bytes to send (or its send window opened). */
  requestSend(stream: MuxStream): void
  sendFin(stream: MuxStream): void
  sendReset(stream: MuxStream): void
  /** The reader consumed bytes; the session may return credit (WINDOW_UPDATE). */
  creditConsumed(stream: MuxStream): void
  /** Both directions closed or reset: leave the session map and return the window budget. */
  release(stream: MuxStream): void
}

interface PendingWrite {
  chunks: Buffer[]
  index: number
  offset: number
  totalBytes: number
  leftBytes: number
  cb: (err?: Error | null) => void
}

/**
 * One multiplexed stream as a Node Duplex.
 * end() sends FIN (reading continues); a remote FIN ends the readable side (writing continues);
 * destroy() sends RST; a remote RST destroys it with PL_ERR_MUX_STREAM_RESET.
 * write() returns false once the peer's window is spent; its WINDOW_UPDATE plays the part of 'drain'.
 */
export class MuxStream extends Duplex implements SendSource {
  readonly id: number
  readonly session: MuxSession
  /** @internal receive-side credit accounting */
  readonly recv: ReceiveWindow
  /** @internal bytes the peer still lets us send */
  sendWindowBytes = SPEC_INITIAL_WINDOW_BYTES
  /** @internal true while in the session's round-robin send queue */
  queued = false
  private readonly host: StreamHost
  private pending: PendingWrite | null = null
  private pushedBytes = 0
  private localFin = false
  private remoteFin = false
  private wasReset = false
  private released = false

  /** @internal created by MuxSession only */
  constructor(session: MuxSession, host: StreamHost, id: number, windowBytes: number, nowMs: number) {
    super({ allowHalfOpen: true })
    this.session = session
    this.host = host
    this.id = id
    this.recv = new ReceiveWindow(windowBytes, nowMs)
  }

  /** True once the peer sent FIN (no more data will arrive). */
  get remoteEnded(): boolean {
    return this.remoteFin
  }

  // ---- readable side ----

  override _read(): void {
    this.noteConsumed()
  }

  /**
   * Every byte that leaves the read buffer, by read(), flowing mode, pipe or async iteration, is
   * emitted as 'data', after the buffer length already dropped: the one exact place to see
   * consumption. (_read() alone is not: Node calls it before taking bytes out, and not again
   * until the next push.) A paused or slow reader emits nothing, so no credit goes back.
   */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    const handled = super.emit(event, ...args)
    if (event === 'data') this.noteConsumed()
    return handled
  }

  /** @internal a DATA payload piece for this stream (already checked against the window). */
  onData(piece: Buffer): void {
    if (this.remoteFin || this.destroyed) return
    this.pushedBytes += piece.length
    this.push(piece)
  }

  /** @internal the peer half-closed. */
  onRemoteFin(): void {
    if (this.remoteFin) return
    this.remoteFin = true
    this.push(null)
    if (this.localFin) this.release()
  }

  /** @internal the peer reset the stream. */
  onRemoteReset(): void {
    this.wasReset = true
    this.release()
    this.destroy(resetError())
  }

  /** @internal the peer granted more send window. */
  onWindowUpdate(deltaBytes: number): void {
    this.sendWindowBytes += deltaBytes
    if (this.pending !== null && deltaBytes > 0) this.host.requestSend(this)
  }

  private noteConsumed(): void {
    if (this.remoteFin || this.released) return
    this.recv.consume(this.pushedBytes - this.readableLength)
    this.host.creditConsumed(this)
  }

  // ---- writable side ----

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.queueWrite([chunk], chunk.length, cb)
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    const bufs = new Array<Buffer>(chunks.length)
    let total = 0
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i]!.chunk
      bufs[i] = c
      total += c.length
    }
    this.queueWrite(bufs, total, cb)
  }

  private queueWrite(chunks: Buffer[], totalBytes: number, cb: (err?: Error | null) => void): void {
    if (totalBytes === 0) {
      cb()
      return
    }
    this.pending = { chunks, index: 0, offset: 0, totalBytes, leftBytes: totalBytes, cb }
    this.host.requestSend(this)
  }

  /** @internal (SendSource) */
  hasSendable(): boolean {
    return this.pending !== null && this.sendWindowBytes > 0 && !this.released
  }

  /**
   * @internal (SendSource) the next DATA frame: at most `maxBytes` and the send window, cut from the
   * pending chunks with subarray (no copy). `done` is the write callback once the write is fully sent.
   */
  takeFrame(maxBytes: number): DataFrame | null {
    const p = this.pending
    if (p === null || this.released) return null
    let bytes = Math.min(maxBytes, this.sendWindowBytes, p.leftBytes)
    if (bytes <= 0) return null
    const pieces: Buffer[] = []
    const frameBytes = bytes
    while (bytes > 0) {
      const chunk = p.chunks[p.index]!
      const avail = chunk.length - p.offset
      if (avail <= bytes) {
        pieces.push(p.offset === 0 ? chunk : chunk.subarray(p.offset))
        bytes -= avail
        p.index++
        p.offset = 0
      } else {
        pieces.push(chunk.subarray(p.offset, p.offset + bytes))
        p.offset += bytes
        bytes = 0
      }
    }
    this.sendWindowBytes -= frameBytes
    p.leftBytes -= frameBytes
    let done: DataFrame['done'] = null
    let fin = false
    if (p.leftBytes === 0) {
      done = p.cb
      this.pending = null
      // end() was called and nothing is buffered behind this write: the FIN goes out right behind
      // this frame, in the same transport write, instead of waiting for _final's next flush.
      if (this.writableEnded && this.writableLength === p.totalBytes && !this.wasReset) {
        fin = true
        this.localFin = true
      }
    }
    return { streamId: this.id, pieces, bytes: frameBytes, done, fin }
  }

  override _final(cb: (err?: Error | null) => void): void {
    // Every write callback has run, so all data is already handed to the transport: FIN follows
    // it, unless it already went out with the last DATA frame.
    if (!this.released && !this.wasReset) {
      if (!this.localFin) {
        this.localFin = true
        this.host.sendFin(this)
      }
      if (this.remoteFin) this.release()
    }
    cb()
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.released) {
      if (!this.wasReset && !(this.localFin && this.remoteFin)) {
        this.wasReset = true
        this.host.sendReset(this)
      }
      this.release()
    }
    this.pending = null
    cb(err)
  }

  private release(): void {
    if (this.released) return
    this.released = true
    this.host.release(this)
  }
}

/**
 * The error of a stream the peer reset, without a stack: a reset is the peer's decision, not a
 * fault at some line here, and capturing and formatting a stack (Node's destroy() reads it) was
 * about 9% of the agent's CPU when every visitor connection ended that way.
 */
function resetError(): PorchlightError {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return new PorchlightError('PL_ERR_MUX_STREAM_RESET')
  } finally {
    Error.stackTraceLimit = limit
  }
}
