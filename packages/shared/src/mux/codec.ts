import { PorchlightError } from '../errors.js'
import { FrameType, HEADER_BYTES, PROTO_VERSION, type FrameHeader } from './frames.js'

/**
 * Receives decoded frames. DATA payloads are streamed, never buffered whole: after `onHeader`,
 * `onPayload` gets each piece as it arrives (subarrays of the input chunks, no copy), then
 * `onDataEnd` once the frame is complete (immediately for a zero-length DATA frame).
 */
export interface FrameSink {
  onHeader(header: FrameHeader): void
  onPayload(header: FrameHeader, piece: Buffer): void
  onDataEnd(header: FrameHeader): void
}

export interface FrameDecoderOptions {
  /** Largest DATA payload accepted; checked on the header, before anything is buffered. */
  maxFrameBytes: number
  sink: FrameSink
}

const State = { Header: 0, Payload: 1, Stopped: 2 } as const
type State = (typeof State)[keyof typeof State]

/**
 * Incremental yamux frame parser: push chunks of any size (a byte at a time or many frames
 * coalesced); a header split across chunks is kept in a 12-byte scratch buffer. A loop, not
 * recursion, so a chunk holding thousands of frames cannot overflow the stack.
 * Throws PorchlightError on a malformed header and stops; the caller closes the session.
 */
export class FrameDecoder {
  private readonly maxFrameBytes: number
  private readonly sink: FrameSink
  private readonly scratch = Buffer.alloc(HEADER_BYTES)
  private scratchFill = 0
  private state: State = State.Header
  private current: FrameHeader | null = null
  private payloadLeftBytes = 0

  constructor(options: FrameDecoderOptions) {
    this.maxFrameBytes = options.maxFrameBytes
    this.sink = options.sink
  }

  /** Ignore all further input (the session is closing, possibly from inside a sink callback). */
  stop(): void {
    this.state = State.Stopped
    this.current = null
  }

  get stopped(): boolean {
    return this.state === State.Stopped
  }

  /** True when no partial header or payload is pending (a clean frame boundary). */
  get idle(): boolean {
    return this.state === State.Header && this.scratchFill === 0
  }

  push(chunk: Buffer): void {
    let offset = 0
    const end = chunk.length
    while (offset < end) {
      if (this.state === State.Payload) {
        const header = this.current!
        const n = Math.min(this.payloadLeftBytes, end - offset)
        const piece = n === end ? chunk : chunk.subarray(offset, offset + n)
        offset += n
        this.payloadLeftBytes -= n
        if (this.payloadLeftBytes === 0) {
          this.state = State.Header
          this.current = null
        }
        this.sink.onPayload(header, piece)
        if (this.payloadLeftBytes === 0 && !this.stopped) this.sink.onDataEnd(header)
        continue
      }
      if (this.stopped) return
      let header: FrameHeader
      if (this.scratchFill === 0 && end - offset >= HEADER_BYTES) {
        header = readHeader(chunk, offset)
        offset += HEADER_BYTES
      } else {
        const n = Math.min(HEADER_BYTES - this.scratchFill, end - offset)
        chunk.copy(this.scratch, this.scratchFill, offset, offset + n)
        this.scratchFill += n
        offset += n
        if (this.scratchFill < HEADER_BYTES) return
        this.scratchFill = 0
        header = readHeader(this.scratch, 0)
      }
      this.validate(header)
      this.sink.onHeader(header)
      if (this.stopped) return
      if (header.type === FrameType.Data) {
        if (header.length === 0) {
          this.sink.onDataEnd(header)
        } else {
          this.state = State.Payload
          this.current = header
          this.payloadLeftBytes = header.length
        }
      }
    }
  }

  private validate(header: FrameHeader): void {
    if (header.version !== PROTO_VERSION) {
      this.stop()
      throw new PorchlightError('PL_ERR_PROTO_BAD_FRAME', [`unsupported yamux version ${header.version}`])
    }
    if (header.type > FrameType.GoAway) {
      this.stop()
      throw new PorchlightError('PL_ERR_PROTO_BAD_FRAME', [`unknown yamux frame type ${header.type}`])
    }
    if (header.type === FrameType.Data && header.length > this.maxFrameBytes) {
      this.stop()
      throw new PorchlightError('PL_ERR_PROTO_FRAME_TOO_LARGE', [header.length, this.maxFrameBytes])
    }
  }
}

function readHeader(buf: Buffer, offset: number): FrameHeader {
  return {
    version: buf[offset]!,
    type: buf[offset + 1]!,
    flags: buf.readUInt16BE(offset + 2),
    streamId: buf.readUInt32BE(offset + 4),
    length: buf.readUInt32BE(offset + 8),
  }
}

/** A fresh 12-byte header (allocUnsafe draws small buffers from Node's shared pool). */
export function encodeHeader(type: FrameType, flags: number, streamId: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_BYTES)
  writeHeader(buf, 0, type, flags, streamId, length)
  return buf
}

/** Writes a header into `target` at `offset` (for callers that pack several headers into one slab). */
export function writeHeader(target: Buffer, offset: number, type: FrameType, flags: number, streamId: number, length: number): void {
  target[offset] = PROTO_VERSION
  target[offset + 1] = type
  target.writeUInt16BE(flags, offset + 2)
  target.writeUInt32BE(streamId, offset + 4)
  target.writeUInt32BE(length, offset + 8)
}
