import tls from 'node:tls'

/**
 * Hand-written HTTP/2 frames for the attack tests: what a well-behaved client library will not
 * send (bad header values, floods). HPACK is literal-without-indexing, no Huffman.
 */
export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, CONTINUATION: 9 } as const
export const FLAG = { END_STREAM: 0x1, END_HEADERS: 0x4 } as const
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9)
  head.writeUIntBE(payload.length, 0, 3)
  head[3] = type
  head[4] = flags
  head.writeUInt32BE(stream & 0x7fffffff, 5)
  return Buffer.concat([head, payload])
}

function hpackLength(n: number): Buffer {
  if (n < 127) return Buffer.from([n])
  const out = [127]
  let rest = n - 127
  while (rest >= 128) { out.push((rest % 128) + 128); rest = Math.floor(rest / 128) }
  out.push(rest)
  return Buffer.from(out)
}

/** One header block: each pair as a literal header field without indexing, new name. */
export function headerBlock(pairs: Array<[string, string]>): Buffer {
  return Buffer.concat(pairs.flatMap(([name, value]) => {
    const n = Buffer.from(name, 'latin1')
    const v = Buffer.from(value, 'latin1')
    return [Buffer.from([0]), hpackLength(n.length), n, hpackLength(v.length), v]
  }))
}

export function requestHeaders(authority: string, path: string, method = 'GET', extra: Array<[string, string]> = []): Array<[string, string]> {
  return [[':method', method], [':scheme', 'https'], [':path', path], [':authority', authority], ...extra]
}

export interface ReceivedFrame { type: number; flags: number; stream: number; payload: Buffer }

/** A raw h2 connection: sends the preface and an empty SETTINGS, collects frames the server sends. */
export class RawH2 {
  readonly frames: ReceivedFrame[] = []
  closed = false
  private buffer = Buffer.alloc(0)
  private constructor(readonly socket: tls.TLSSocket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('close', () => { this.closed = true })
    socket.on('error', () => undefined)
  }

  static connect(port: number, servername: string): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, servername, ALPNProtocols: ['h2'], rejectUnauthorized: false }, () => { // lint-allow: throwaway test CA
        if (socket.alpnProtocol !== 'h2') return reject(new Error(`ALPN chose ${String(socket.alpnProtocol)}`))
        socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]))
        resolve(new RawH2(socket))
      })
      socket.once('error', reject)
    })
  }

  send(...frames: Buffer[]): boolean {
    return this.socket.write(Buffer.concat(frames))
  }

  /** The first frame of `type` (on `stream`, when given) within `ms`, or null. */
  async waitFor(type: number, ms: number, stream?: number): Promise<ReceivedFrame | null> {
    const deadline = Date.now() + ms
    while (Date.now() < deadline) {
      const found = this.frames.find(f => f.type === type && (stream === undefined || f.stream === stream))
      if (found) return found
      if (this.closed) return null
      await new Promise(r => setTimeout(r, 20))
    }
    return null
  }

  async waitClosed(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms
    while (!this.closed && Date.now() < deadline) await new Promise(r => setTimeout(r, 20))
    return this.closed
  }

  close(): void {
    this.socket.destroy()
  }

  private onData(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk])
    while (this.buffer.length >= 9) {
      const length = this.buffer.readUIntBE(0, 3)
      if (this.buffer.length < 9 + length) return
      this.frames.push({ type: this.buffer[3]!, flags: this.buffer[4]!, stream: this.buffer.readUInt32BE(5) & 0x7fffffff, payload: this.buffer.subarray(9, 9 + length) })
      this.buffer = this.buffer.subarray(9 + length)
      // Keep memory bounded under floods: only the first frames matter to the tests.
      if (this.frames.length > 5000) this.frames.splice(100, this.frames.length - 200)
    }
  }
}

/** RST_STREAM / GOAWAY error code (RFC 9113 §7). */
export function errorCodeOf(f: ReceivedFrame): number {
  return f.type === FRAME.GOAWAY ? f.payload.readUInt32BE(4) : f.payload.readUInt32BE(0)
}
