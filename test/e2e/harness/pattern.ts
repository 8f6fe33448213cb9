import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'

/**
 * Deterministic test payloads: byte `o` of any payload is PERIOD_BYTES-periodic, so origin, client
 * and assertions agree without storing the bytes. The period is prime so a dropped, duplicated or
 * reordered chunk of any power-of-two size changes the bytes seen at later offsets.
 */
export const PERIOD_BYTES = 65521
const REPEATS = 16
const TABLE = buildTable()
/** Longest zero-copy slice we hand out; TABLE holds one spare period past it. */
const MAX_SLICE_BYTES = PERIOD_BYTES * (REPEATS - 1)

function buildTable(): Buffer {
  const table = Buffer.allocUnsafe(PERIOD_BYTES * REPEATS)
  let x = 0x9e3779b9
  for (let i = 0; i < PERIOD_BYTES; i++) {
    // xorshift32: cheap and not a run of equal bytes, so truncation at any offset shows up.
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    table[i] = x & 0xff
  }
  for (let r = 1; r < REPEATS; r++) table.copy(table, r * PERIOD_BYTES, 0, PERIOD_BYTES)
  return table
}

/** The pattern bytes [offset, offset + lengthBytes) as a view (no copy); lengthBytes ≤ ~983 KB. */
export function patternSlice(offset: number, lengthBytes: number): Buffer {
  if (lengthBytes > MAX_SLICE_BYTES) throw new RangeError(`patternSlice: ${lengthBytes} > ${MAX_SLICE_BYTES}`)
  const start = offset % PERIOD_BYTES
  return TABLE.subarray(start, start + lengthBytes)
}

/** A readable producing exactly totalBytes of the pattern in chunkBytes pieces, with backpressure. */
export function patternStream(totalBytes: number, chunkBytes = 64 * 1024): Readable {
  let sent = 0
  return new Readable({
    highWaterMark: chunkBytes * 4,
    read() {
      // Push until the stream says stop; each push is a view, so this costs no copies.
      for (;;) {
        if (sent >= totalBytes) { this.push(null); return }
        const n = Math.min(chunkBytes, totalBytes - sent)
        const chunk = patternSlice(sent, n)
        sent += n
        if (!this.push(chunk)) return
      }
    },
  })
}

/** Hex SHA-256 of the first totalBytes of the pattern (what an intact transfer must hash to). */
export function patternSha256(totalBytes: number): string {
  const hash = createHash('sha256')
  const step = PERIOD_BYTES * 8
  for (let o = 0; o < totalBytes; o += step) hash.update(patternSlice(o, Math.min(step, totalBytes - o)))
  return hash.digest('hex')
}

/**
 * Checks received chunks against the pattern at their offset (memcmp speed, far cheaper than a hash
 * for gigabyte transfers). `firstMismatchAt` is the offset of the first wrong byte, or -1.
 */
export class PatternVerifier {
  receivedBytes = 0
  firstMismatchAt = -1

  push(chunk: Buffer): void {
    for (let done = 0; done < chunk.length;) {
      const n = Math.min(chunk.length - done, MAX_SLICE_BYTES)
      if (this.firstMismatchAt === -1) {
        const expected = patternSlice(this.receivedBytes, n)
        if (!expected.equals(chunk.subarray(done, done + n))) this.firstMismatchAt = this.receivedBytes + firstDiff(expected, chunk.subarray(done, done + n))
      }
      this.receivedBytes += n
      done += n
    }
  }
}

function firstDiff(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i
  return n
}
