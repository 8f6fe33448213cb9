import { createHash } from 'node:crypto'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import type { Scope } from './scope.js'
import { patternSlice, PatternVerifier } from './pattern.js'

/**
 * Raw TCP helpers for the tcp and forward e2e tests: port probes, an SSH-like echo service with
 * hashes on both sides, and a service that parses a PROXY protocol header itself.
 */

// ---------------------------------------------------------------- sockets and ports

/**
 * Listens on host:0 and resolves with the port. When the scope ends the server closes and its
 * live connections are destroyed (a test that failed half-way must not hang teardown).
 */
export async function listenEphemeral(t: Scope, server: Server, host = '127.0.0.1'): Promise<number> {
  const live = new Set<Socket>()
  server.on('connection', (s: Socket) => { live.add(s); s.once('close', () => live.delete(s)) })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, () => { server.off('error', reject); resolve() })
  })
  t.teardown(() => new Promise<void>(resolve => {
    server.close(() => resolve())
    for (const s of live) s.destroy()
  }))
  return (server.address() as AddressInfo).port
}

/**
 * A client socket with half-close kept (our write side stays open after the peer's FIN) and
 * Nagle off; rejects on connect errors or after timeoutMs.
 */
export function connectTcp(port: number, host = '127.0.0.1', timeoutMs = 5000): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host, allowHalfOpen: true })
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`connect ${host}:${port}: no connection within ${timeoutMs} ms`)) }, timeoutMs)
    socket.once('connect', () => { clearTimeout(timer); socket.setNoDelay(true); resolve(socket) })
    socket.once('error', err => { clearTimeout(timer); reject(err) })
  })
}

/** What a fresh connection to a port sees: 'refused' (nothing listens), or the socket's fate. */
export type PortProbe = 'refused' | 'open' | 'closed-by-peer' | 'error'

/**
 * Connects and waits up to holdMs: 'open' when the connection is still up then (or data arrived),
 * 'closed-by-peer' when the peer closed it without sending a byte (an allow_ips drop),
 * 'refused' on ECONNREFUSED.
 */
export function probePort(port: number, holdMs = 300, host = '127.0.0.1'): Promise<PortProbe> {
  return new Promise(resolve => {
    const socket = connect({ port, host })
    let settled = false
    const finish = (result: PortProbe): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve(result)
    }
    const timer = setTimeout(() => finish('open'), holdMs + 2000)
    socket.once('connect', () => { clearTimeout(timer); setTimeout(() => finish('open'), holdMs) })
    socket.once('data', () => finish('open'))
    socket.once('end', () => finish('closed-by-peer'))
    socket.once('close', () => finish('closed-by-peer'))
    socket.once('error', (err: NodeJS.ErrnoException) => finish(err.code === 'ECONNREFUSED' ? 'refused' : err.code === 'ECONNRESET' ? 'closed-by-peer' : 'error'))
  })
}

/**
 * `count` consecutive loopback ports that were all free a moment ago (for a relay's `tcp_ports`
 * range). Binds every one to be sure, then releases them; retries a bounded number of times.
 */
export async function freePortRange(count: number, host = '127.0.0.1'): Promise<{ from: number; to: number }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // Stay clear of the ephemeral range (32768+ on Linux), where our own clients' ports come from.
    const from = 20_000 + Math.floor(Math.random() * 12_000)
    const bound: Server[] = []
    let ok = true
    for (let p = from; p < from + count && ok; p++) {
      const server = createServer()
      ok = await new Promise<boolean>(resolve => {
        server.once('error', () => resolve(false))
        server.listen(p, host, () => resolve(true))
      })
      if (ok) bound.push(server)
    }
    await Promise.all(bound.map(s => new Promise<void>(resolve => s.close(() => resolve()))))
    if (ok) return { from, to: from + count - 1 }
  }
  throw new Error(`freePortRange: no ${count} consecutive free ports found on ${host}`)
}

/** Resolves once the socket has seen the peer's FIN ('end') or closed; with the time it took. */
export function waitForEnd(socket: Socket, timeoutMs: number): Promise<{ how: 'end' | 'close' | 'timeout'; ms: number }> {
  const started = Date.now()
  return new Promise(resolve => {
    if (socket.readableEnded) { resolve({ how: 'end', ms: 0 }); return }
    if (socket.destroyed) { resolve({ how: 'close', ms: 0 }); return }
    const finish = (how: 'end' | 'close' | 'timeout'): void => {
      clearTimeout(timer)
      socket.off('end', onEnd)
      socket.off('close', onClose)
      resolve({ how, ms: Date.now() - started })
    }
    const onEnd = (): void => finish('end')
    const onClose = (): void => finish('close')
    const timer = setTimeout(() => finish('timeout'), timeoutMs)
    socket.once('end', onEnd)
    socket.once('close', onClose)
    // Flowing mode, or 'end' never fires while unread bytes sit in the buffer.
    if (socket.listenerCount('data') === 0) socket.resume()
  })
}

/** Writes a buffer and waits until it is handed to the kernel (backpressure respected). */
function writeAsync(socket: Socket, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.write(chunk, err => (err ? reject(err) : resolve()))
  })
}

// ---------------------------------------------------------------- the SSH-like echo service

/*
 * A stand-in for SSH with the traits that matter to a tunnel: the server speaks first (an
 * identification line), then both sides exchange binary packets `uint32 length | uint8 type |
 * payload`, every byte value occurs, and the session ends with a half-close after which the
 * server still sends its last packet. Types follow SSH's channel messages: 94 data, 96 eof
 * summary (JSON {packets, bytes, sha256} of every data payload the server received).
 */
export const SSH_LIKE_SERVER_BANNER = 'SSH-2.0-PorchlightEcho_1.0'
export const SSH_LIKE_CLIENT_BANNER = 'SSH-2.0-PorchlightTest_1.0'
/** A client banner ending in this asks the server to send EOF first and only listen (reverse half-close). */
export const LISTEN_ONLY_SUFFIX = ' listen-only'
const MSG_DATA = 94
const MSG_EOF = 96
/** SSH's own limit for a packet is 35000 bytes; stay under it. */
export const MAX_PACKET_PAYLOAD = 32 * 1024
const MAX_BANNER_BYTES = 255

export interface EchoSummary {
  packets: number
  bytes: number
  sha256: string
}

/** What the echo service saw on one connection. */
export interface EchoConnection {
  remoteAddress: string
  remotePort: number
  clientBanner: string | null
  received: EchoSummary
  /** True once the client's FIN arrived. */
  clientEnded: boolean
  /** Resolves when the connection is fully closed. */
  closed: Promise<void>
  error: string | null
}

export interface EchoService {
  port: number
  connections: EchoConnection[]
}

/** Accumulates `uint32 length | type | payload` packets from a byte stream. */
class PacketReader {
  private buffered: Buffer[] = []
  private bufferedBytes = 0

  /** Feeds bytes; calls onPacket for each complete packet. Throws on a length over the limit. */
  push(chunk: Buffer, onPacket: (type: number, payload: Buffer) => void): void {
    this.buffered.push(chunk)
    this.bufferedBytes += chunk.length
    for (;;) {
      if (this.bufferedBytes < 4) return
      const head = this.peek(4)
      const length = head.readUInt32BE(0)
      if (length < 1 || length > MAX_PACKET_PAYLOAD + 1) throw new Error(`bad packet length ${length}`)
      if (this.bufferedBytes < 4 + length) return
      const packet = this.take(4 + length)
      onPacket(packet[4] ?? 0, packet.subarray(5))
    }
  }

  get pendingBytes(): number {
    return this.bufferedBytes
  }

  private peek(n: number): Buffer {
    if ((this.buffered[0]?.length ?? 0) < n) this.buffered = [Buffer.concat(this.buffered)]
    return (this.buffered[0] ?? Buffer.alloc(0)).subarray(0, n)
  }

  private take(n: number): Buffer {
    const all = this.buffered.length === 1 ? (this.buffered[0] ?? Buffer.alloc(0)) : Buffer.concat(this.buffered)
    const out = all.subarray(0, n)
    const rest = all.subarray(n)
    this.buffered = rest.length > 0 ? [rest] : []
    this.bufferedBytes = rest.length
    return out
  }
}

function packet(type: number, payload: Buffer): Buffer {
  const head = Buffer.allocUnsafe(5)
  head.writeUInt32BE(payload.length + 1, 0)
  head[4] = type
  return Buffer.concat([head, payload])
}

/**
 * Splits off a CRLF-terminated identification line from the start of a stream. Returns null
 * until the line is complete; throws when it grows past 255 bytes (SSH's limit).
 */
function takeBanner(buffer: Buffer): { banner: string; rest: Buffer } | null {
  const end = buffer.indexOf('\r\n')
  if (end === -1) {
    if (buffer.length > MAX_BANNER_BYTES) throw new Error('identification line too long')
    return null
  }
  return { banner: buffer.subarray(0, end).toString('latin1'), rest: buffer.subarray(end + 2) }
}

/**
 * Starts the SSH-like echo service on 127.0.0.1:0: sends its banner at once, reads the client's,
 * echoes every data packet back (with backpressure), and on the client's FIN sends an EOF packet
 * with the hash of everything it received, then FIN. With the listen-only banner it sends its
 * FIN right after the banner exchange and just hashes what arrives.
 */
export async function startSshLikeEcho(t: Scope): Promise<EchoService> {
  const connections: EchoConnection[] = []
  const server = createServer({ allowHalfOpen: true }, socket => {
    socket.setNoDelay(true)
    const hash = createHash('sha256')
    let resolveClosed: () => void = () => undefined
    const record: EchoConnection = {
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      clientBanner: null,
      received: { packets: 0, bytes: 0, sha256: '' },
      clientEnded: false,
      closed: new Promise(resolve => { resolveClosed = resolve }),
      error: null,
    }
    connections.push(record)
    const reader = new PacketReader()
    let head: Buffer | null = Buffer.alloc(0)
    let listenOnly = false
    socket.on('error', err => { record.error = err.message })
    socket.once('close', () => resolveClosed())
    socket.write(`${SSH_LIKE_SERVER_BANNER}\r\n`)
    const onPacket = (type: number, payload: Buffer): void => {
      if (type !== MSG_DATA) throw new Error(`unexpected packet type ${type}`)
      hash.update(payload)
      record.received.packets++
      record.received.bytes += payload.length
      if (!listenOnly && !socket.write(packet(MSG_DATA, payload))) {
        socket.pause()
        socket.once('drain', () => socket.resume())
      }
    }
    socket.on('data', (chunk: Buffer) => {
      try {
        if (head !== null) {
          const banner = takeBanner(Buffer.concat([head, chunk]))
          if (banner === null) { head = Buffer.concat([head, chunk]); return }
          head = null
          record.clientBanner = banner.banner
          listenOnly = banner.banner.endsWith(LISTEN_ONLY_SUFFIX)
          if (listenOnly) socket.end()
          chunk = banner.rest
        }
        reader.push(chunk, onPacket)
      } catch (err) {
        record.error = (err as Error).message
        socket.destroy()
      }
    })
    socket.once('end', () => {
      record.clientEnded = true
      record.received.sha256 = hash.digest('hex')
      if (reader.pendingBytes !== 0) record.error = `${reader.pendingBytes} bytes of a partial packet at EOF`
      if (listenOnly) return
      // The client is done sending; our side is still open: the last packet travels after its FIN.
      socket.end(packet(MSG_EOF, Buffer.from(JSON.stringify(record.received))))
    })
  })
  const port = await listenEphemeral(t, server)
  return { port, connections }
}

export interface SshLikeResult {
  serverBanner: string
  /** Data payload bytes echoed back, and their hash. */
  echoedBytes: number
  echoedSha256: string
  /** Offset of the first echoed byte that differs from the pattern, or -1. */
  firstMismatchAt: number
  /** The server's EOF packet: what it received, sent after our FIN. */
  summary: EchoSummary | null
  ms: number
}

/**
 * Runs one SSH-like session on an open socket: waits for the server's banner, sends ours, then
 * totalBytes of the deterministic pattern in data packets while reading the echo, half-closes,
 * and reads until the server's FIN. Rejects after timeoutMs.
 */
export function sshLikeSession(socket: Socket, totalBytes: number, timeoutMs: number): Promise<SshLikeResult> {
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    const verifier = new PatternVerifier()
    const reader = new PacketReader()
    let head: Buffer | null = Buffer.alloc(0)
    let serverBanner = ''
    let summary: EchoSummary | null = null
    let settled = false
    const fail = (err: Error): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      reject(err)
    }
    const timer = setTimeout(() => fail(new Error(`ssh-like session: not done after ${timeoutMs} ms (echoed ${verifier.receivedBytes} of ${totalBytes} bytes)`)), timeoutMs)
    socket.on('error', fail)
    const onPacket = (type: number, payload: Buffer): void => {
      if (type === MSG_DATA) {
        hash.update(payload)
        verifier.push(payload)
      } else if (type === MSG_EOF) {
        summary = JSON.parse(payload.toString('utf8')) as EchoSummary
      } else {
        throw new Error(`unexpected packet type ${type}`)
      }
    }
    socket.on('data', (chunk: Buffer) => {
      try {
        if (head !== null) {
          const banner = takeBanner(Buffer.concat([head, chunk]))
          if (banner === null) { head = Buffer.concat([head, chunk]); return }
          head = null
          serverBanner = banner.banner
          chunk = banner.rest
          void sendAll().catch(fail)
        }
        reader.push(chunk, onPacket)
      } catch (err) {
        fail(err as Error)
      }
    })
    socket.once('end', () => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ serverBanner, echoedBytes: verifier.receivedBytes, echoedSha256: hash.digest('hex'), firstMismatchAt: verifier.firstMismatchAt, summary, ms: Date.now() - started })
    })
    const sendAll = async (): Promise<void> => {
      await writeAsync(socket, Buffer.from(`${SSH_LIKE_CLIENT_BANNER}\r\n`))
      for (let sent = 0; sent < totalBytes;) {
        const n = Math.min(MAX_PACKET_PAYLOAD, totalBytes - sent)
        const ok = socket.write(packet(MSG_DATA, patternSlice(sent, n)))
        sent += n
        if (!ok) await new Promise<void>(resolve => socket.once('drain', () => resolve()))
        if (settled) return
      }
      socket.end()
    }
  })
}

/**
 * The reverse half-close: the client announces listen-only, waits for the server's FIN, and only
 * then sends totalBytes in data packets and its own FIN. Resolves with when the FIN came and
 * whether data was still in flight after it.
 */
export async function listenOnlySession(socket: Socket, totalBytes: number, timeoutMs: number): Promise<{ serverBanner: string; serverFinBeforeUpload: boolean }> {
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  await writeAsync(socket, Buffer.from(`${SSH_LIKE_CLIENT_BANNER}${LISTEN_ONLY_SUFFIX}\r\n`))
  const fin = await waitForEnd(socket, timeoutMs)
  const serverBanner = takeBanner(Buffer.concat(chunks))?.banner ?? ''
  if (fin.how !== 'end') return { serverBanner, serverFinBeforeUpload: false }
  for (let sent = 0; sent < totalBytes;) {
    const n = Math.min(MAX_PACKET_PAYLOAD, totalBytes - sent)
    const ok = socket.write(packet(MSG_DATA, patternSlice(sent, n)))
    sent += n
    if (!ok) await new Promise<void>(resolve => socket.once('drain', () => resolve()))
  }
  await new Promise<void>(resolve => socket.end(() => resolve()))
  return { serverBanner, serverFinBeforeUpload: true }
}

// ---------------------------------------------------------------- PROXY protocol

/** A PROXY header as the test's own parser read it (written from the HAProxy spec, independently of the product's). */
export interface ParsedProxyHeader {
  version: 1 | 2
  family: 'TCP4' | 'TCP6'
  sourceAddress: string
  sourcePort: number
  destinationAddress: string
  destinationPort: number
  headerBytes: number
}

const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex')

/**
 * Parses a PROXY v1 or v2 header at the start of data; null when more bytes are needed. Throws
 * when the bytes are not a valid header of a proxied TCP connection.
 */
export function parseProxyHeaderForTest(data: Buffer): ParsedProxyHeader | null {
  if (data.length >= 12 && data.subarray(0, 12).equals(V2_SIGNATURE)) {
    if (data.length < 16) return null
    const verCmd = data[12] ?? 0
    const famProto = data[13] ?? 0
    const length = data.readUInt16BE(14)
    if (verCmd !== 0x21) throw new Error(`v2: version/command byte 0x${verCmd.toString(16)} (expected 0x21 PROXY)`)
    if (data.length < 16 + length) return null
    const body = data.subarray(16, 16 + length)
    if (famProto === 0x11 && length >= 12) {
      const ip = (o: number): string => [0, 1, 2, 3].map(i => String(body[o + i])).join('.')
      return { version: 2, family: 'TCP4', sourceAddress: ip(0), destinationAddress: ip(4), sourcePort: body.readUInt16BE(8), destinationPort: body.readUInt16BE(10), headerBytes: 16 + length }
    }
    if (famProto === 0x21 && length >= 36) {
      const ip = (o: number): string => Array.from({ length: 8 }, (_, i) => body.readUInt16BE(o + i * 2).toString(16)).join(':')
      return { version: 2, family: 'TCP6', sourceAddress: ip(0), destinationAddress: ip(16), sourcePort: body.readUInt16BE(32), destinationPort: body.readUInt16BE(34), headerBytes: 16 + length }
    }
    throw new Error(`v2: family/protocol 0x${famProto.toString(16)} with ${length} address bytes`)
  }
  const end = data.indexOf('\r\n')
  if (end === -1) {
    if (data.length > 107) throw new Error('v1: no CRLF within 107 bytes')
    return null
  }
  const line = data.subarray(0, end).toString('latin1')
  const m = /^PROXY (TCP4|TCP6) (\S+) (\S+) (\d{1,5}) (\d{1,5})$/.exec(line)
  if (!m) throw new Error(`not a PROXY v1 line: ${JSON.stringify(line)}`)
  return { version: 1, family: m[1] as 'TCP4' | 'TCP6', sourceAddress: m[2] ?? '', destinationAddress: m[3] ?? '', sourcePort: Number(m[4]), destinationPort: Number(m[5]), headerBytes: end + 2 }
}

export interface ProxyConnection {
  header: ParsedProxyHeader | null
  /** The bytes after the header. */
  payload: Buffer
  error: string | null
  done: Promise<void>
}

export interface ProxyHeaderService {
  port: number
  connections: ProxyConnection[]
}

/**
 * A service behind `proxy_protocol:`. Reads the header, then the payload until FIN, and answers
 * `HEADER <json>\n` followed by the payload reversed, then FIN (so the visitor can check both).
 */
export async function startProxyHeaderService(t: Scope): Promise<ProxyHeaderService> {
  const connections: ProxyConnection[] = []
  const server = createServer({ allowHalfOpen: true }, socket => {
    const chunks: Buffer[] = []
    let resolveDone: () => void = () => undefined
    const record: ProxyConnection = { header: null, payload: Buffer.alloc(0), error: null, done: new Promise(resolve => { resolveDone = resolve }) }
    connections.push(record)
    socket.on('error', err => { record.error = err.message })
    socket.once('close', () => resolveDone())
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.once('end', () => {
      const all = Buffer.concat(chunks)
      try {
        record.header = parseProxyHeaderForTest(all)
        if (record.header === null) throw new Error(`incomplete PROXY header (${all.length} bytes)`)
        record.payload = all.subarray(record.header.headerBytes)
        socket.end(Buffer.concat([Buffer.from(`HEADER ${JSON.stringify(record.header)}\n`), Buffer.from(record.payload).reverse()]))
      } catch (err) {
        record.error = (err as Error).message
        socket.end(`ERROR ${record.error}\n`)
      }
    })
  })
  const port = await listenEphemeral(t, server)
  return { port, connections }
}

/** Sends payload, half-closes, and collects everything the peer sends until its FIN. */
export async function sendAndCollect(socket: Socket, payload: Buffer, timeoutMs: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.end(payload)
  const fin = await waitForEnd(socket, timeoutMs)
  socket.destroy()
  if (fin.how === 'timeout') throw new Error(`no FIN from the peer within ${timeoutMs} ms (got ${Buffer.concat(chunks).length} bytes)`)
  return Buffer.concat(chunks)
}

// ---------------------------------------------------------------- a plain counting server

/** A server that counts connections and closes each at once: "was the destination ever reached?". */
export async function startConnectionCounter(t: Scope): Promise<{ port: number; count: () => number }> {
  let count = 0
  const server = createServer(socket => { count++; socket.destroy() })
  const port = await listenEphemeral(t, server)
  return { port, count: () => count }
}
