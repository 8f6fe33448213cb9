// Test helpers for the multiplexer: in-memory and TCP transports, echo servers, hashing.
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import net from 'node:net'
import { Duplex } from 'node:stream'
import { encodeHeader, FrameDecoder } from '../../src/mux/codec.js'
import { MuxSession, type MuxOptions, type MuxStream } from '../../src/mux/index.js'

/** Minimal tap surface the helpers need (teardown registration). */
export interface Teardown {
  teardown(fn: () => unknown): void
}

/**
 * One end of an in-memory byte pipe. Bytes written here are pushed to the peer, re-cut into
 * `chunkBytes` pieces when set (to exercise frame parsing across arbitrary boundaries).
 */
class PipeEnd extends Duplex {
  peer!: PipeEnd
  constructor(private readonly chunkBytes: number) {
    super({ allowHalfOpen: false })
  }
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const peer = this.peer
    if (peer.destroyed) return cb()
    if (this.chunkBytes <= 0 || chunk.length <= this.chunkBytes) peer.push(chunk)
    else for (let o = 0; o < chunk.length; o += this.chunkBytes) peer.push(chunk.subarray(o, o + this.chunkBytes))
    cb()
  }
  override _final(cb: (err?: Error | null) => void): void {
    if (!this.peer.destroyed) this.peer.push(null)
    cb()
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.peer.destroyed) this.peer.destroy()
    cb(err)
  }
}

export function memoryPair(chunkBytes = 0): [Duplex, Duplex] {
  const a = new PipeEnd(chunkBytes)
  const b = new PipeEnd(chunkBytes)
  a.peer = b
  b.peer = a
  return [a, b]
}

export async function tcpPair(t: Teardown): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as net.AddressInfo
  const accepted = once(server, 'connection') as Promise<[net.Socket]>
  const client = net.connect(port, '127.0.0.1')
  await once(client, 'connect')
  const [serverSide] = await accepted
  server.close()
  t.teardown(() => {
    client.destroy()
    serverSide.destroy()
  })
  return [client, serverSide]
}

export type SessionOptions = Partial<Omit<MuxOptions, 'role'>>

/** A client and a server session over the given transports; both closed on teardown. */
export function sessionPair(t: Teardown, [a, b]: [Duplex, Duplex], clientOpts: SessionOptions = {}, serverOpts: SessionOptions = clientOpts): { client: MuxSession; server: MuxSession } {
  const client = new MuxSession(a, { keepAliveIntervalMs: 0, ...clientOpts, role: 'client' })
  const server = new MuxSession(b, { keepAliveIntervalMs: 0, ...serverOpts, role: 'server' })
  t.teardown(() => {
    closeQuietly(client)
    closeQuietly(server)
  })
  return { client, server }
}

/**
 * Teardown: streams a test left open would error when the session closes; that is the contract
 * (tested on its own), not something every test should have to handle.
 */
export function closeQuietly(session: MuxSession): void {
  const live = (session as unknown as { streams: Map<number, MuxStream> }).streams
  for (const s of live.values()) s.on('error', () => {})
  session.close()
}

/** Every inbound stream echoes what it reads, then half-closes. */
export function echoStreams(session: MuxSession): void {
  session.on('stream', (s) => {
    s.on('error', () => {})
    s.pipe(s)
  })
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex')
}

/**
 * Reads a stream to its end without destroying it (a for-await loop would destroy the Duplex
 * at the end, resetting its still-open write side).
 */
export function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    stream.on('data', (c: Buffer) => parts.push(c))
    stream.once('end', () => resolve(Buffer.concat(parts)))
    stream.once('error', reject)
  })
}

/** Writes `data` in `writeBytes` pieces respecting backpressure, then end(). */
export async function writeAll(stream: MuxStream, data: Buffer, writeBytes = 64 * 1024): Promise<void> {
  for (let o = 0; o < data.length; o += writeBytes) {
    if (!stream.write(data.subarray(o, o + writeBytes))) await once(stream, 'drain')
  }
  stream.end()
}

/** Opens `count` streams, sends `bytes` random bytes on each and checks the echo's sha256. */
export async function echoCheck(client: MuxSession, count: number, bytes: number, writeBytes?: number): Promise<{ sent: string[]; echoed: string[] }> {
  const sent: string[] = []
  const jobs: Array<Promise<string>> = []
  for (let i = 0; i < count; i++) {
    const data = randomBytes(bytes)
    sent.push(sha256(data))
    const s = client.open()
    const reply = collect(s)
    void writeAll(s, data, writeBytes)
    jobs.push(reply.then(sha256))
  }
  return { sent, echoed: await Promise.all(jobs) }
}

/** Resolves once `cond()` holds, polling every few ms; rejects after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

export interface RawFrame {
  type: number
  flags: number
  streamId: number
  length: number
  payload: Buffer
}

/**
 * A session facing a hand-driven peer: `send()` writes raw frames at it, `frames` records
 * every frame the session writes back (decoded with the same codec, payloads joined).
 */
export function rawPeer(t: Teardown, options: SessionOptions & { role?: 'client' | 'server' } = {}): {
  session: MuxSession
  frames: RawFrame[]
  send: (type: number, flags: number, streamId: number, length: number, payload?: Buffer) => void
  sendBytes: (bytes: Buffer) => void
  waitFrame: (pred: (f: RawFrame) => boolean, what?: string) => Promise<RawFrame>
  raw: Duplex
} {
  const [a, raw] = memoryPair()
  const { role = 'server', ...rest } = options
  const session = new MuxSession(a, { keepAliveIntervalMs: 0, ...rest, role })
  t.teardown(() => {
    closeQuietly(session)
    raw.destroy()
  })
  const frames: RawFrame[] = []
  const parts = new Map<RawFrame, Buffer[]>()
  let current: RawFrame | null = null
  const decoder = new FrameDecoder({
    maxFrameBytes: 64 * 1024 * 1024,
    sink: {
      onHeader: (h) => {
        const f: RawFrame = { type: h.type, flags: h.flags, streamId: h.streamId, length: h.length, payload: Buffer.alloc(0) }
        if (h.type !== 0) frames.push(f)
        else {
          current = f
          parts.set(f, [])
        }
      },
      onPayload: (_h, piece) => parts.get(current!)!.push(Buffer.from(piece)),
      onDataEnd: () => {
        const f = current!
        f.payload = Buffer.concat(parts.get(f)!)
        parts.delete(f)
        frames.push(f)
        current = null
      },
    },
  })
  raw.on('data', (c: Buffer) => decoder.push(c))
  raw.on('error', () => {})
  const sendBytes = (bytes: Buffer): void => {
    raw.write(bytes)
  }
  const send = (type: number, flags: number, streamId: number, length: number, payload?: Buffer): void => {
    sendBytes(payload ? Buffer.concat([encodeHeader(type as 0, flags, streamId, length), payload]) : encodeHeader(type as 0, flags, streamId, length))
  }
  const waitFrame = async (pred: (f: RawFrame) => boolean, what = 'frame'): Promise<RawFrame> => {
    let found: RawFrame | undefined
    await waitFor(() => (found = frames.find(pred)) !== undefined, 2_000, what)
    return found!
  }
  return { session, frames, send, sendBytes, waitFrame, raw }
}
