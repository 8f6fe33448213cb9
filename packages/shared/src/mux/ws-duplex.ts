import { Duplex, Writable } from 'node:stream'
import type { RawData, WebSocket } from 'ws'
import { noteBytesMoved } from './scavenge.js'

export interface WebSocketDuplexOptions {
  /** Largest WebSocket message sent; a batch of writes is packed into messages up to this. */
  maxMessageBytes?: number
  /** Read buffer before the socket is paused, and ws.bufferedAmount above which writes wait. */
  highWaterMarkBytes?: number
}

const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024 + 64 * 1024
const DEFAULT_HIGH_WATER_MARK_BYTES = 1024 * 1024
/** Chunks below this are copied into a shared message; larger ones are sent as they are. */
const COPY_BELOW_BYTES = 16 * 1024
// ws readyState values (the ws module is only imported for types here).
const CONNECTING = 0
const OPEN = 1
const CLOSING = 2
/** How long a graceful close may wait for the peer's close frame before the socket is cut. */
const CLOSE_HANDSHAKE_MS = 2_000

/**
 * A WebSocket as a byte Duplex for the multiplexer. Message boundaries carry no meaning: each
 * binary message is pushed as bytes. The small writes of one batch (_writev) are packed into one
 * message; large chunks go out as messages of their own rather than being copied.
 * Backpressure both ways: a full read buffer pauses the socket; a write completes only once
 * ws.bufferedAmount is back under the high-water mark.
 *
 * Wrap the socket while it is still CONNECTING (writes wait for 'open'), or synchronously inside
 * the 'open' / 'connection' handler. Not after `await once(ws, 'open')`: the peer's first
 * messages can arrive in the same read as the upgrade response and are emitted on a nextTick,
 * before that await resumes, so they would be lost and the byte stream would be corrupt.
 */
export function websocketDuplex(ws: WebSocket, options: WebSocketDuplexOptions = {}): Duplex {
  return new WebSocketDuplex(ws, options)
}

class WebSocketDuplex extends Duplex {
  private readonly ws: WebSocket
  private readonly maxMessageBytes: number
  private readonly highWaterMarkBytes: number
  /** A write callback held back until bufferedAmount drops. */
  private waitingCb: ((err?: Error | null) => void) | null = null

  constructor(ws: WebSocket, options: WebSocketDuplexOptions) {
    const highWaterMarkBytes = options.highWaterMarkBytes ?? DEFAULT_HIGH_WATER_MARK_BYTES
    super({ readableHighWaterMark: highWaterMarkBytes, writableHighWaterMark: highWaterMarkBytes, allowHalfOpen: false })
    this.ws = ws
    this.maxMessageBytes = Math.max(1, options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES)
    this.highWaterMarkBytes = highWaterMarkBytes
    ws.on('message', this.onMessage)
    ws.on('close', this.onClose)
    ws.on('error', this.onError)
  }

  private readonly onMessage = (data: RawData): void => {
    const bytes = toBuffer(data)
    noteBytesMoved(bytes.length)
    if (!this.push(bytes)) this.ws.pause()
  }

  private readonly onClose = (): void => {
    this.push(null)
    const cb = this.waitingCb
    this.waitingCb = null
    if (cb !== null) cb(new Error('websocket closed with writes pending'))
  }

  private readonly onError = (err: Error): void => {
    this.destroy(err)
  }

  private readonly onSent = (err?: Error): void => {
    if (err) {
      if (!this.destroyed) this.destroy(err)
      return
    }
    this.releaseWhenRoom()
  }

  override _read(): void {
    if (this.ws.isPaused) this.ws.resume()
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.sendAll([chunk], cb)
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this.sendAll(
      chunks.map((c) => c.chunk),
      cb,
    )
  }

  private sendAll(chunks: Buffer[], cb: (err?: Error | null) => void): void {
    const ws = this.ws
    if (ws.readyState === CONNECTING) {
      ws.once('open', () => this.sendAll(chunks, cb))
      return
    }
    if (ws.readyState !== OPEN) {
      cb(new Error('websocket is not open'))
      return
    }
    const max = this.maxMessageBytes
    let moved = 0
    for (const chunk of chunks) moved += chunk.length
    noteBytesMoved(moved)
    let batch: Buffer[] = []
    let batchBytes = 0
    const flush = (): void => {
      const message = batch.length === 1 ? batch[0]! : Buffer.concat(batch, batchBytes)
      batch = []
      batchBytes = 0
      ws.send(message, { binary: true }, this.onSent)
    }
    // ws writes every message to its socket on its own (a frame header with a 12-byte mux header
    // is a syscall, and a wakeup of the peer, of its own); corked, the batch leaves in one writev.
    const socket = socketOf(ws)
    socket?.cork()
    try {
      for (let chunk of chunks) {
        // Big chunks (frame bodies) travel as their own messages, without a copy; small ones
        // (headers, control frames, short writes) are packed together.
        if (chunk.length >= COPY_BELOW_BYTES) {
          if (batchBytes > 0) flush()
          while (chunk.length > max) {
            ws.send(chunk.subarray(0, max), { binary: true }, this.onSent)
            chunk = chunk.subarray(max)
          }
          ws.send(chunk, { binary: true }, this.onSent)
          continue
        }
        if (batchBytes + chunk.length > max) flush()
        batch.push(chunk)
        batchBytes += chunk.length
      }
      if (batchBytes > 0) flush()
    } finally {
      socket?.uncork()
    }
    this.waitingCb = cb
    this.releaseWhenRoom()
  }

  private releaseWhenRoom(): void {
    const cb = this.waitingCb
    if (cb === null || this.ws.bufferedAmount > this.highWaterMarkBytes) return
    this.waitingCb = null
    cb()
  }

  override _final(cb: (err?: Error | null) => void): void {
    const ws = this.ws
    if (ws.readyState === OPEN) ws.close(1000)
    else if (ws.readyState === CONNECTING) ws.terminate()
    cb()
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const ws = this.ws
    ws.off('message', this.onMessage)
    ws.off('close', this.onClose)
    ws.off('error', this.onError)
    ws.on('error', noop) // the socket may still report errors after we let go
    if (ws.readyState === OPEN && !err) ws.close(1000)
    if (err || ws.readyState === CONNECTING) {
      ws.terminate()
    } else if (ws.readyState === CLOSING) {
      // A peer that never answers our close frame should not hold the socket for ws's 30 s.
      setTimeout(() => ws.terminate(), CLOSE_HANDSHAKE_MS).unref()
    }
    this.waitingCb = null
    cb(err)
  }
}

/** The TCP socket under a ws WebSocket (its `_socket`; ws has no public cork). */
function socketOf(ws: WebSocket): Writable | null {
  const socket = (ws as unknown as { _socket?: unknown })._socket
  return socket instanceof Writable ? socket : null
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data
  if (Array.isArray(data)) return Buffer.concat(data)
  return Buffer.from(data)
}

function noop(): void {}
