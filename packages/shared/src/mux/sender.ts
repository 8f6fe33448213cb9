import type { Duplex } from 'node:stream'
import { encodeHeader, writeHeader } from './codec.js'
import { Flag, FrameType, HEADER_BYTES } from './frames.js'

/** One DATA frame cut from a stream's pending write. */
export interface DataFrame {
  streamId: number
  pieces: Buffer[]
  bytes: number
  /** The stream's write callback when this frame finishes its pending write. */
  done: ((err?: Error | null) => void) | null
  /** The stream's last bytes: a FIN follows this frame at once. */
  fin?: boolean
}

/** A stream as seen by the sender (MuxStream implements it). */
export interface SendSource {
  queued: boolean
  hasSendable(): boolean
  takeFrame(maxBytes: number): DataFrame | null
}

export interface FrameSenderOptions {
  /** Largest DATA payload per frame; also the round-robin quantum between streams. */
  frameBytes: number
  /** Data frames written per flush before yielding to I/O (setImmediate). */
  maxFramesPerFlush?: number
}

/**
 * The session's single writer. Control frames (SYN/ACK/FIN/RST, window updates, pings, GoAway)
 * go first and are packed into one buffer per flush. DATA frames come from a round-robin queue
 * of streams, one frame per turn, and stop while the transport reports backpressure (write()
 * returned false) until it emits 'drain'. Each flush writes everything queued between cork()
 * and uncork(), so a socket gets one writev and a WebSocket adapter one message.
 *
 * When to flush adapts to load. The first flush of an event-loop turn runs on the next tick, so a
 * quiet link answers at once. Anything queued after it in the same turn waits for setImmediate
 * (after this turn's I/O callbacks), so on a busy link the frames of every request handled in the
 * turn (SYNs, heads, bodies, FINs) share one write: about two writes per turn instead of several
 * per request, which is most of what a small request costs on loopback.
 */
export class FrameSender {
  private readonly transport: Duplex
  private readonly frameBytes: number
  private readonly maxFramesPerFlush: number
  /** Control frames as flat (type, flags, streamId, length) quadruples. */
  private control: number[] = []
  private ready: SendSource[] = []
  private readyHead = 0
  private scheduled = false
  /** A flush already ran in this event-loop turn: batch the rest until setImmediate. */
  private busyTurn = false
  private blocked = false
  private stopped = false
  private readonly onDrain = (): void => {
    this.blocked = false
    this.flush()
  }
  private readonly flushNow = (): void => {
    this.scheduled = false
    this.flush()
  }
  private readonly endTurn = (): void => {
    this.busyTurn = false
  }

  constructor(transport: Duplex, options: FrameSenderOptions) {
    this.transport = transport
    this.frameBytes = options.frameBytes
    this.maxFramesPerFlush = options.maxFramesPerFlush ?? 1024
    transport.on('drain', this.onDrain)
  }

  /** Bytes of control frames waiting (a peer that floods us without reading shows up here). */
  get controlBacklogBytes(): number {
    return (this.control.length / 4) * HEADER_BYTES
  }

  /** Queues a control frame ahead of all data. */
  sendControl(type: FrameType, flags: number, streamId: number, length: number): void {
    if (this.stopped) return
    this.control.push(type, flags, streamId, length)
    this.schedule()
  }

  /** Adds a stream with sendable data to the round-robin queue (idempotent). */
  enqueue(source: SendSource): void {
    if (this.stopped || source.queued) return
    source.queued = true
    this.ready.push(source)
    this.schedule()
  }

  /** Writes the queued control frames right now, without data (the final GoAway). */
  flushControlOnly(): void {
    const t = this.transport
    if (this.stopped || t.destroyed || t.writableEnded) return
    this.writeControl()
  }

  stop(): void {
    this.stopped = true
    this.control = []
    for (let i = this.readyHead; i < this.ready.length; i++) this.ready[i]!.queued = false
    this.ready = []
    this.readyHead = 0
    this.transport.off('drain', this.onDrain)
  }

  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    if (this.busyTurn) setImmediate(this.flushNow)
    else process.nextTick(this.flushNow)
  }

  private flush(): void {
    const t = this.transport
    if (this.stopped || t.destroyed || t.writableEnded) return
    if (!this.busyTurn) {
      this.busyTurn = true
      setImmediate(this.endTurn)
    }
    t.cork()
    try {
      this.writeControl()
      this.writeData()
    } finally {
      t.uncork()
    }
  }

  private writeControl(): void {
    const q = this.control
    if (q.length === 0) return
    const count = q.length / 4
    const buf = Buffer.allocUnsafe(count * HEADER_BYTES)
    for (let i = 0, o = 0; i < q.length; i += 4, o += HEADER_BYTES) {
      writeHeader(buf, o, q[i] as FrameType, q[i + 1]!, q[i + 2]!, q[i + 3]!)
    }
    this.control = []
    // Control frames are small and bounded by what the peer sends us, so they are written even
    // under backpressure; otherwise window updates could wait behind a full pipe.
    if (!this.transport.write(buf)) this.blocked = true
  }

  private writeData(): void {
    const t = this.transport
    let frames = 0
    while (!this.blocked && !this.stopped && this.readyHead < this.ready.length) {
      if (frames >= this.maxFramesPerFlush) {
        // Yield to I/O; the rest goes out on the next turn of the event loop.
        if (!this.scheduled) {
          this.scheduled = true
          setImmediate(this.flushNow)
        }
        return
      }
      const source = this.ready[this.readyHead]!
      this.ready[this.readyHead++] = undefined as unknown as SendSource
      if (this.readyHead === this.ready.length) {
        this.ready = []
        this.readyHead = 0
      } else if (this.readyHead > 1024 && this.readyHead * 2 > this.ready.length) {
        this.ready = this.ready.slice(this.readyHead)
        this.readyHead = 0
      }
      source.queued = false
      const frame = source.takeFrame(this.frameBytes)
      if (frame === null) continue
      frames++
      let ok = t.write(encodeHeader(FrameType.Data, 0, frame.streamId, frame.bytes))
      for (const piece of frame.pieces) ok = t.write(piece) && ok
      // The stream's end right behind its last bytes, in the same write. A separate frame, not a
      // FIN flag on the DATA frame: libp2p's yamux drops the payload of a DATA frame with FIN.
      if (frame.fin === true) ok = t.write(encodeHeader(FrameType.WindowUpdate, Flag.FIN, frame.streamId, 0)) && ok
      if (!ok) this.blocked = true
      if (source.hasSendable()) this.enqueue(source)
      // May re-enter (the next write of that stream); enqueue() copes with that.
      if (frame.done !== null) frame.done()
      if (this.control.length > 0) this.writeControl()
    }
  }
}
