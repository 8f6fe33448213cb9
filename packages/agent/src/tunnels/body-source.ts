import { Readable, type Duplex } from 'node:stream'

/**
 * The request body as its own Readable for the origin client. The HTTP client destroys its body
 * when the exchange ends; handing it the mux stream itself would reset the stream that still
 * carries the response. Backpressure: the stream is paused while this source is full.
 * A Content-Length (`limitBytes`) is enforced both ways: more or fewer bytes end in an error.
 */
export class BodySource extends Readable {
  private bytes = 0

  constructor(
    private readonly stream: Duplex,
    first: Buffer | null,
    private readonly limitBytes: number | null,
    /** Sees every body chunk (counting, and the inspector's copy of the first bytes). */
    private readonly onChunk: (chunk: Buffer) => void,
  ) {
    super()
    if (first !== null) this.accept(first)
    this.stream.on('data', this.onData)
    if (this.stream.readableEnded) this.onEnd()
    else this.stream.once('end', this.onEnd)
    this.stream.pause()
  }

  override _read(): void {
    this.stream.resume()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.stream.off('data', this.onData)
    this.stream.off('end', this.onEnd)
    callback(err)
  }

  private readonly onData = (chunk: Buffer): void => {
    if (!this.accept(chunk)) this.stream.pause()
  }

  private readonly onEnd = (): void => {
    if (this.limitBytes !== null && this.bytes !== this.limitBytes) {
      this.destroy(new Error('request body shorter than its Content-Length'))
      return
    }
    this.push(null)
  }

  /** false when the consumer is full (or the body is over its limit). */
  private accept(chunk: Buffer): boolean {
    this.bytes += chunk.length
    this.onChunk(chunk)
    if (this.limitBytes !== null && this.bytes > this.limitBytes) {
      this.destroy(new Error('request body longer than its Content-Length'))
      return false
    }
    return this.push(chunk)
  }
}
