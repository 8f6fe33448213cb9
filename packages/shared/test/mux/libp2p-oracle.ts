// @chainsafe/libp2p-yamux (dev dependency) as a wire-format oracle: its muxer over a plain TCP
// socket, its streams mapped onto Node Duplexes so the tests can treat both sides alike.
import type net from 'node:net'
import { Duplex } from 'node:stream'
import { logger } from '@libp2p/logger'
import { AbstractMultiaddrConnection } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'

// Node 20 lacks Promise.withResolvers, which libp2p calls.
const PromiseCtor = Promise as unknown as { withResolvers?: () => unknown }
PromiseCtor.withResolvers ??= function withResolvers<T>() {
  let resolve!: (v: T) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

// Several copies of uint8arraylist are installed; take the one @libp2p/utils uses.
type ChunkList = Parameters<AbstractMultiaddrConnection['sendData']>[0]

/** The minimal connection libp2p muxers need, over a TCP socket. */
class SocketConnection extends AbstractMultiaddrConnection {
  private readonly socket: net.Socket

  constructor(socket: net.Socket, direction: 'inbound' | 'outbound') {
    super({ remoteAddr: multiaddr('/ip4/127.0.0.1/tcp/1'), direction, log: logger('mux-oracle') })
    this.socket = socket
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('drain', () => this.safeDispatchEvent('drain'))
    socket.on('close', () => this.onTransportClosed())
    socket.on('error', () => {})
  }

  sendData(data: ChunkList): { sentBytes: number; canSendMore: boolean } {
    let canSendMore = true
    for (const chunk of data) canSendMore = this.socket.write(chunk)
    return { sentBytes: data.byteLength, canSendMore }
  }

  sendReset(): void {
    this.socket.destroy()
  }

  sendPause(): void {
    this.socket.pause()
  }

  sendResume(): void {
    this.socket.resume()
  }

  async sendClose(): Promise<void> {
    this.socket.end()
  }
}

/** What the tests use of a libp2p yamux stream. */
export interface OracleStream {
  send(data: Uint8Array): boolean
  close(): Promise<void>
  abort(err: Error): void
  addEventListener(type: string, listener: (evt: Event & { data?: Uint8Array | ChunkList; error?: Error }) => void, options?: { once?: boolean }): void
}

export interface OracleMuxer {
  createStream(): Promise<OracleStream>
  addEventListener(type: 'stream', listener: (evt: CustomEvent<OracleStream>) => void): void
  close(): Promise<void>
  abort(err: Error): void
  ping?: () => Promise<number>
}

export async function oracleMuxer(socket: net.Socket, role: 'client' | 'server'): Promise<OracleMuxer> {
  const { yamux } = await import('@chainsafe/libp2p-yamux')
  const conn = new SocketConnection(socket, role === 'client' ? 'outbound' : 'inbound')
  const factory = yamux({ enableKeepAlive: false })()
  return factory.createStreamMuxer(conn) as unknown as OracleMuxer
}

/** A libp2p stream as a Node Duplex: 'message' -> push, 'remoteCloseWrite' -> end, reset -> error. */
export function oracleDuplex(stream: OracleStream): Duplex {
  const d = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      if (stream.send(chunk)) cb()
      // Its onDrain() promise never resets after the first drain; the event does.
      else stream.addEventListener('drain', () => cb(), { once: true })
    },
    final(cb) {
      stream.close().then(() => cb(), cb)
    },
    destroy(err, cb) {
      if (err) stream.abort(err)
      cb(err)
    },
  })
  stream.addEventListener('message', (evt) => {
    const data = evt.data!
    d.push(data instanceof Uint8Array ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data.subarray()))
  })
  // Deferred: libp2p may dispatch this before the data of the same frame.
  stream.addEventListener('remoteCloseWrite', () => setImmediate(() => d.push(null)))
  stream.addEventListener('close', (evt) => {
    if (evt.error) d.destroy(evt.error)
  })
  d.on('error', () => {}) // resets are asserted through the libp2p events where a test cares
  return d
}
