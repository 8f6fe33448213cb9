/**
 * A response body delimited by its Content-Length, read without llhttp: the parser checked the head
 * (one Content-Length of digits, no Transfer-Encoding beside it) and is paused at its end; the
 * body's bytes are then counted off the chunks as they come and passed on as slices of them, where
 * llhttp's binding copies every body byte into a new Buffer.
 */

/** Above this a length is left to llhttp (a Number stays exact up to 2^53). */
const MAX_COUNTED_DIGITS = 15

/**
 * The body length of a response the relay may count itself; null to leave the body to llhttp
 * (chunked, read to the close, empty, or a status that has no body whatever its headers say).
 * `headers` is the flat name/value list of a head llhttp has accepted.
 */
export function countedBodyLength(status: number, headers: readonly string[]): number | null {
  // llhttp reads no body for these (RFC 9112 6.3); 1xx never reaches here as a final head.
  if (status < 200 || status === 204 || status === 304) return null
  let length: string | null = null
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!
    if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') return null
    if (name.length === 14 && name.toLowerCase() === 'content-length') {
      if (length !== null) return null // llhttp refuses duplicates; never guess between two
      length = headers[i + 1]!
    }
  }
  if (length === null || length.length > MAX_COUNTED_DIGITS || !/^[0-9]+$/.test(length)) return null
  const n = Number(length)
  return n > 0 ? n : null
}

export class CountedBody {
  constructor(private leftBytes: number) {}

  get done(): boolean {
    return this.leftBytes === 0
  }

  /** This body's part of `chunk` (empty once done); the caller reads the rest past it. */
  take(chunk: Buffer): Buffer {
    const n = Math.min(this.leftBytes, chunk.length)
    this.leftBytes -= n
    return n === chunk.length ? chunk : chunk.subarray(0, n)
  }
}
