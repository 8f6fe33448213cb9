import type { Duplex, Readable, Writable } from 'node:stream'
import { PorchlightError } from '../errors.js'

/**
 * Control messages and stream heads travel as length-prefixed JSON: a 4-byte big-endian length
 * then that many bytes of UTF-8 JSON. The size is checked before anything is buffered.
 */
export const MAX_MESSAGE_BYTES = 64 * 1024
const LENGTH_BYTES = 4

export function encodeMessage(value: unknown, maxBytes = MAX_MESSAGE_BYTES): Buffer {
  const json = JSON.stringify(value)
  // Measure, then encode straight into the framed buffer: one allocation, no copy (one per stream head).
  const length = Buffer.byteLength(json, 'utf8')
  if (length > maxBytes) throw new PorchlightError('PL_ERR_PROTO_FRAME_TOO_LARGE', [length, maxBytes])
  const out = Buffer.allocUnsafe(LENGTH_BYTES + length)
  out.writeUInt32BE(length, 0)
  out.write(json, LENGTH_BYTES, length, 'utf8')
  return out
}

/** Incremental decoder: push chunks of any size, get whole parsed messages back. */
export class MessageDecoder {
  private chunks: Buffer[] = []
  private buffered = 0
  constructor(private readonly maxBytes = MAX_MESSAGE_BYTES) {}

  /**
   * Returns the complete messages in the bytes received so far (at most `maxMessages`; bytes
   * after those stay buffered for takeRest); throws on oversize or bad JSON.
   */
  push(chunk: Buffer, maxMessages = Number.POSITIVE_INFINITY): unknown[] {
    this.chunks.push(chunk)
    this.buffered += chunk.length
    const out: unknown[] = []
    while (out.length < maxMessages) {
      if (this.buffered < LENGTH_BYTES) break
      const head = this.peek(LENGTH_BYTES)
      const length = head.readUInt32BE(0)
      if (length > this.maxBytes) throw new PorchlightError('PL_ERR_PROTO_FRAME_TOO_LARGE', [length, this.maxBytes])
      if (this.buffered < LENGTH_BYTES + length) break
      const whole = this.take(LENGTH_BYTES + length)
      out.push(parseJson(whole.subarray(LENGTH_BYTES)))
    }
    return out
  }

  /** Bytes received after the last complete message (used when a raw body follows a head). */
  takeRest(): Buffer {
    const rest = Buffer.concat(this.chunks)
    this.chunks = []
    this.buffered = 0
    return rest
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0]
    if (first && first.length >= n) return first.subarray(0, n)
    return Buffer.concat(this.chunks).subarray(0, n)
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks)
    const taken = all.subarray(0, n)
    const rest = all.subarray(n)
    this.chunks = rest.length > 0 ? [rest] : []
    this.buffered = rest.length
    return taken
  }
}

function parseJson(bytes: Buffer): unknown {
  const text = bytes.toString('utf8')
  try {
    // The reviver drops prototype-polluting keys before anything looks at the object. It runs
    // for every value, so it is only used when such a key can occur at all: spelled out, or
    // hidden behind a \u escape. Without any of those the plain parse yields the same object.
    return mayHideUnsafeKey(text) ? JSON.parse(text, dropUnsafeKeys) : JSON.parse(text)
  } catch (err) {
    throw new PorchlightError('PL_ERR_PROTO_BAD_MESSAGE', ['not JSON'], { cause: err })
  }
}

function mayHideUnsafeKey(text: string): boolean {
  return text.includes('__proto__') || text.includes('constructor') || text.includes('\\u')
}

function dropUnsafeKeys(key: string, value: unknown): unknown {
  return key === '__proto__' || key === 'constructor' ? undefined : value
}

/** Writes one framed head; resolves when the stream accepted it. */
export function writeHead(stream: Writable, value: unknown): boolean {
  return stream.write(encodeMessage(value))
}

/**
 * Reads exactly one framed head from a stream, then puts any bytes after it back with
 * `unshift` so the body can be piped as usual. Rejects on end, error, close, oversize or timeout:
 * a stream destroyed without an error (the visitor left) must not hold its waiter until the timeout.
 */
export function readHead(stream: Readable | Duplex, timeoutMs = 30_000, maxBytes = MAX_MESSAGE_BYTES): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const decoder = new MessageDecoder(maxBytes)
    // Its own code: callers tell a slow peer from a broken stream without reading messages.
    const timer = setTimeout(() => finish(new PorchlightError('PL_ERR_PROTO_HEAD_TIMEOUT', [String(timeoutMs)])), timeoutMs)
    const onReadable = (): void => {
      let chunk: Buffer | null
      while ((chunk = stream.read() as Buffer | null) !== null) {
        let messages: unknown[]
        try {
          // Only the head is framed; what follows it is raw body and must not be parsed.
          messages = decoder.push(chunk, 1)
        } catch (err) {
          finish(err as Error)
          return
        }
        if (messages.length > 0) {
          // Anything after the head belongs to the body: hand it back untouched.
          const rest = decoder.takeRest()
          finish(undefined, messages[0])
          if (rest.length > 0) stream.unshift(rest)
          return
        }
      }
    }
    const onEnd = (): void => finish(new PorchlightError('PL_ERR_PROTO_BAD_FRAME', ['stream ended before its head']))
    const onError = (err: Error): void => finish(err)
    const onClose = (): void => finish(new PorchlightError('PL_ERR_PROTO_BAD_FRAME', ['stream closed before its head']))
    let done = false
    function finish(err?: Error, value?: unknown): void {
      if (done) return
      done = true
      clearTimeout(timer)
      stream.off('readable', onReadable)
      stream.off('end', onEnd)
      stream.off('error', onError)
      stream.off('close', onClose)
      if (err) reject(err)
      else resolve(value)
    }
    stream.on('readable', onReadable)
    stream.on('end', onEnd)
    stream.on('error', onError)
    stream.on('close', onClose)
    onReadable()
  })
}
