import { createHash } from 'node:crypto'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { Writable, duplexPair, type Duplex, type Readable } from 'node:stream'
import { createLogger, type Logger } from '../../src/log.js'

/**
 * Two connected Duplex ends standing in for the relay and agent ends of one mux stream: bytes
 * and FIN cross over (duplexPair), and destroying one end before it finished resets the other,
 * the way a yamux RST does.
 */
export function streamPair(): [Duplex, Duplex] {
  const [a, b] = duplexPair()
  const reset = (from: Duplex, to: Duplex): void => {
    from.on('close', () => {
      if (from.readableEnded && from.writableFinished) return
      if (!to.destroyed) to.destroy(new Error('stream reset by peer'))
    })
  }
  reset(a, b)
  reset(b, a)
  return [a, b]
}

export interface LogLine {
  level: number
  msg: string
  [key: string]: unknown
}

/** A real pino logger (via createLogger) whose JSON lines are kept in memory for assertions. */
export function captureLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = []
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const text of chunk.toString('utf8').split('\n')) {
        if (text.trim() !== '') lines.push(JSON.parse(text) as LogLine)
      }
      cb()
    },
  })
  return { log: createLogger({ name: 'test', level: 'debug', destination }), lines }
}

/** Resolves when `check()` is true, polling every 5 ms; rejects after timeoutMs. */
export async function waitFor(check: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** A connected loopback TCP pair, both ends half-open capable. Teardown closes the server. */
export async function socketPair(): Promise<{ client: Socket; server: Socket; close: () => Promise<void> }> {
  const listener = createServer({ allowHalfOpen: true })
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve))
  const { port } = listener.address() as AddressInfo
  const accepted = new Promise<Socket>((resolve) => listener.once('connection', resolve))
  const client = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
  await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject))
  const server = await accepted
  // As in production (wire contract: setNoDelay on every socket we own); Nagle would add 40 ms stalls.
  client.setNoDelay(true)
  server.setNoDelay(true)
  return {
    client,
    server,
    close: () => {
      client.destroy()
      server.destroy()
      return new Promise<void>((resolve) => listener.close(() => resolve()))
    },
  }
}

/** Reads a readable to its end and returns the bytes' sha256 and count. */
export function hashUntilEnd(stream: Readable): Promise<{ sha256: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    let bytes = 0
    stream.on('data', (chunk: Buffer) => {
      hash.update(chunk)
      bytes += chunk.length
    })
    stream.once('end', () => resolve({ sha256: hash.digest('hex'), bytes }))
    stream.once('error', reject)
  })
}

/** Collects a readable to its end as a string (without for-await, which would destroy the writable half too). */
export function readAll(stream: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    stream.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    stream.once('error', reject)
  })
}

/**
 * Half-close round trip: `first` ends with `request`; once `second` has all of it and the FIN,
 * `second` ends with `reply`, which `first` must still receive. Returns what each side read.
 */
export async function halfCloseExchange(first: Duplex, second: Duplex, request: string, reply: string): Promise<{ secondGot: string; firstGot: string }> {
  const secondReading = readAll(second)
  first.end(request)
  const secondGot = await secondReading
  const firstReading = readAll(first)
  second.end(reply)
  return { secondGot, firstGot: await firstReading }
}

/** Deterministic pseudo-random bytes (fast, no crypto needed) so failures are reproducible. */
export function patternBytes(size: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(size)
  let x = seed >>> 0 || 1
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    if (i + 4 <= size) out.writeUInt32LE(x, i)
    else for (let j = i; j < size; j++) out[j] = (x >>> ((j - i) * 8)) & 0xff
  }
  return out
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex')
}
