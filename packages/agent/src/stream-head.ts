import type { Duplex, Readable } from 'node:stream'
import { PorchlightError } from '@porchlight/shared/errors'
import { MAX_MESSAGE_BYTES, MessageDecoder } from '@porchlight/shared/protocol'

const LENGTH_BYTES = 4

/**
 * Reads exactly one framed head (4-byte length + JSON) from a stream and puts every byte after it
 * back with unshift, untouched: the body that follows is arbitrary bytes and must never be parsed
 * as further messages. (The shared readHead runs the whole buffer through MessageDecoder, which
 * fails when body bytes arrive in the same chunk as the head; this reader stops at the head.)
 * Rejects on end, error, oversize or timeout.
 */
export function readStreamHead(stream: Readable | Duplex, timeoutMs: number, maxBytes = MAX_MESSAGE_BYTES): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let buffered = 0
    let needed: number | null = null
    const timer = setTimeout(() => finish(new PorchlightError('PL_ERR_PROTO_BAD_FRAME', ['stream head timed out'])), timeoutMs)
    const onReadable = (): void => {
      let chunk: Buffer | null
      while ((chunk = stream.read() as Buffer | null) !== null) {
        chunks.push(chunk)
        buffered += chunk.length
        if (needed === null && buffered >= LENGTH_BYTES) {
          const length = Buffer.concat(chunks).readUInt32BE(0)
          // Size checked before anything else is buffered.
          if (length > maxBytes) return finish(new PorchlightError('PL_ERR_PROTO_FRAME_TOO_LARGE', [length, maxBytes]))
          needed = LENGTH_BYTES + length
        }
        if (needed !== null && buffered >= needed) {
          const all = Buffer.concat(chunks)
          let message: unknown
          try {
            // The shared decoder parses the one frame (JSON with prototype keys dropped).
            message = new MessageDecoder(maxBytes).push(all.subarray(0, needed))[0]
          } catch (err) {
            return finish(err as Error)
          }
          const rest = all.subarray(needed)
          finish(undefined, message)
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
