import type { IncomingMessage } from 'node:http'
import type { Writable } from 'node:stream'

export interface RequestBodyOptions {
  /** `limits.max_body_bytes`; null: no limit. */
  maxBytes: number | null
  onBytes: (n: number) => void
  /** The body passed maxBytes: it is no longer forwarded and the stream is reset (origin request aborted). */
  onTooLarge: () => void
}

/**
 * Streams a visitor's request body into its mux stream (or the origin request) with backpressure, cutting it at the body
 * limit. A declared Content-Length over the limit never gets here (refused before the stream
 * opens); this catches chunked bodies, which only show their size as they arrive.
 */
export function forwardRequestBody(req: IncomingMessage, stream: Writable, opts: RequestBodyOptions): void {
  let received = 0
  let refused = false
  req.on('data', (chunk: Buffer) => {
    received += chunk.length
    opts.onBytes(chunk.length)
    if (refused || opts.maxBytes === null || received <= opts.maxBytes) return
    refused = true
    req.unpipe(stream)
    stream.destroy()
    opts.onTooLarge()
  })
  // The stream's FIN tells the agent the body is whole, so it is sent only for a complete body. A
  // visitor that half-closes mid-chunked-body would otherwise hand the origin a shorter body that
  // looks finished; a visitor that leaves mid-upload must free the stream at once (issue 16).
  req.pipe(stream, { end: false })
  req.once('end', () => {
    if (req.complete) stream.end()
    else stream.destroy()
  })
  req.once('close', () => {
    if (!req.complete && !stream.destroyed) stream.destroy()
  })
}
