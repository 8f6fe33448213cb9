// Multiplexer throughput over a real ws WebSocket on loopback, relay and agent in two processes.
//   node --import=tsx --conditions=source packages/shared/bench/mux-throughput.bench.ts
// Prints a table: raw ws MB/s each way (the ceiling, same run), one mux stream MB/s each way
// (agent -> relay also with the zero mask relay-link.ts uses), and short streams/s.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { WebSocket, WebSocketServer } from 'ws'
import { MuxSession, websocketDuplex, type MuxStream } from '../src/mux/index.js'

export interface BenchResult {
  name: string
  value: number
  unit: string
}

export interface MuxBenchOptions {
  /** How long each throughput measurement sends (ms). */
  durationMs?: number
}

const PEER_FLAG = '--mux-bench-peer'
const CHUNK_BYTES = 1024 * 1024
const SHORT_STREAM_BYTES = 100
const SHORT_STREAM_CONCURRENCY = 64
const MAX_PAYLOAD_BYTES = 4 * 1024 * 1024

/** Runs every measurement against a peer process; resolves with one result per row. */
export async function runMuxBench(options: MuxBenchOptions = {}): Promise<BenchResult[]> {
  const durationMs = options.durationMs ?? 3_000
  const child = fork(fileURLToPath(import.meta.url), [PEER_FLAG], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  try {
    const [port] = (await once(child, 'message')) as [number]
    const url = `ws://127.0.0.1:${port}`
    const results: BenchResult[] = []
    results.push({ name: 'raw ws, agent -> relay', value: await rawWsUpload(`${url}/raw`, durationMs), unit: 'MB/s' })
    results.push({ name: 'mux 1 stream, agent -> relay', value: await muxUpload(`${url}/mux-sink`, durationMs, false), unit: 'MB/s' })
    results.push({ name: 'mux 1 stream, agent -> relay, zero mask', value: await muxUpload(`${url}/mux-sink`, durationMs, true), unit: 'MB/s' })
    results.push({ name: 'raw ws, relay -> agent', value: await rawWsDownload(`${url}/raw-source?ms=${durationMs}`), unit: 'MB/s' })
    results.push({ name: 'mux 1 stream, relay -> agent', value: await muxDownload(`${url}/mux-source?ms=${durationMs}`), unit: 'MB/s' })
    results.push({ name: 'mux short streams (100 B echo)', value: await shortStreams(`${url}/mux-echo`, durationMs), unit: 'streams/s' })
    return results
  } finally {
    child.kill()
  }
}

function mbPerSecond(bytes: number, ms: number): number {
  return Math.round((bytes / 1e6 / (ms / 1000)) * 10) / 10
}

async function connect(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: MAX_PAYLOAD_BYTES })
  await once(ws, 'open')
  return ws
}

/**
 * The session wraps the socket before 'open', so no early message can slip past it.
 * zeroMask: the agent's relay link sends with an all-zero mask, which ws skips (no XOR pass).
 */
async function connectSession(url: string, zeroMask = false): Promise<MuxSession> {
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: MAX_PAYLOAD_BYTES, ...(zeroMask ? { generateMask: (mask: Buffer) => void mask.fill(0) } : {}) })
  const session = new MuxSession(websocketDuplex(ws), { role: 'client' })
  await once(ws, 'open')
  return session
}

/** Raw ws: 1 MiB messages while bufferedAmount allows, for durationMs; the peer reports the total. */
async function rawWsUpload(url: string, durationMs: number): Promise<number> {
  const ws = await connect(url)
  const chunk = Buffer.alloc(CHUNK_BYTES, 7)
  const started = performance.now()
  let sentBytes = 0
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      while (ws.bufferedAmount < 4 * CHUNK_BYTES) {
        if (performance.now() - started > durationMs) return resolve()
        sentBytes += chunk.length
        ws.send(chunk, pump)
      }
    }
    pump()
  })
  ws.send('done')
  const [reply] = (await once(ws, 'message')) as [Buffer]
  const elapsed = performance.now() - started
  ws.close()
  const received = Number(reply.toString())
  if (received !== sentBytes) throw new Error(`raw ws: sent ${sentBytes}, peer got ${received}`)
  return mbPerSecond(received, elapsed)
}

/** Raw ws the other way: the peer sends 1 MiB messages for the given time, then a text 'done'. */
async function rawWsDownload(url: string): Promise<number> {
  // Listen before 'open': the first messages can arrive in the same read as the upgrade.
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: MAX_PAYLOAD_BYTES })
  let started = 0
  let bytes = 0
  const done = new Promise<void>((resolve) => {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) bytes += data.length
      else resolve()
    })
  })
  ws.once('upgrade', () => (started = performance.now()))
  await done
  const elapsed = performance.now() - started
  ws.close()
  return mbPerSecond(bytes, elapsed)
}

/** One mux stream: write 1 MiB chunks for durationMs, end; the peer answers with the byte count. */
async function muxUpload(url: string, durationMs: number, zeroMask: boolean): Promise<number> {
  const session = await connectSession(url, zeroMask)
  const stream = session.open()
  const chunk = Buffer.alloc(CHUNK_BYTES, 7)
  const started = performance.now()
  let sentBytes = 0
  while (performance.now() - started < durationMs) {
    sentBytes += chunk.length
    if (!stream.write(chunk)) await once(stream, 'drain')
  }
  stream.end()
  const reply = await readAll(stream)
  const elapsed = performance.now() - started
  session.close()
  const received = Number(reply.toString())
  if (received !== sentBytes) throw new Error(`mux upload: sent ${sentBytes}, peer got ${received}`)
  return mbPerSecond(received, elapsed)
}

/** The relay opens a stream and sends for the given time; we count. */
async function muxDownload(url: string): Promise<number> {
  const session = await connectSession(url)
  const [stream] = (await once(session, 'stream')) as [MuxStream]
  stream.on('error', () => {}) // closing the session below resets our still-open write side
  const started = performance.now()
  let bytes = 0
  stream.on('data', (c: Buffer) => {
    bytes += c.length
  })
  await once(stream, 'end')
  const elapsed = performance.now() - started
  session.close()
  return mbPerSecond(bytes, elapsed)
}

/** open, write 100 B, end, read the echo to its end; SHORT_STREAM_CONCURRENCY at a time. */
async function shortStreams(url: string, durationMs: number): Promise<number> {
  const session = await connectSession(url)
  const payload = Buffer.alloc(SHORT_STREAM_BYTES, 1)
  const started = performance.now()
  let done = 0
  const worker = async (): Promise<void> => {
    while (performance.now() - started < durationMs) {
      const s = session.open()
      s.end(payload)
      const echo = await readAll(s)
      if (echo.length !== SHORT_STREAM_BYTES) throw new Error(`short stream echoed ${echo.length} bytes`)
      done++
    }
  }
  await Promise.all(Array.from({ length: SHORT_STREAM_CONCURRENCY }, worker))
  const elapsed = performance.now() - started
  const leaked = session.streamCount
  session.close()
  if (leaked !== 0) throw new Error(`short streams: ${leaked} streams still live`)
  return Math.round(done / (elapsed / 1000))
}

async function readAll(stream: MuxStream): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of stream) parts.push(c as Buffer)
  return Buffer.concat(parts)
}

// ---- the relay side, in its own process ----

async function runPeer(): Promise<void> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: MAX_PAYLOAD_BYTES })
  await once(wss, 'listening')
  wss.on('connection', (ws, req) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname === '/raw') return rawSink(ws)
    if (url.pathname === '/raw-source') return rawSource(ws, Number(url.searchParams.get('ms')))
    const session = new MuxSession(websocketDuplex(ws), { role: 'server' })
    session.on('close', () => {})
    if (url.pathname === '/mux-sink') session.on('stream', countingSink)
    if (url.pathname === '/mux-echo') session.on('stream', (s) => s.on('error', () => {}).pipe(s))
    if (url.pathname === '/mux-source') void source(session, Number(url.searchParams.get('ms')))
  })
  // Exit with the parent (a normal exit also lets --cpu-prof write its profile).
  process.on('disconnect', () => process.exit(0))
  process.send!((wss.address() as AddressInfo).port)
}

function rawSink(ws: WebSocket): void {
  let bytes = 0
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) bytes += data.length
    else ws.send(String(bytes))
  })
}

function rawSource(ws: WebSocket, durationMs: number): void {
  const chunk = Buffer.alloc(CHUNK_BYTES, 9)
  const started = performance.now()
  let finished = false
  const pump = (): void => {
    while (!finished && ws.bufferedAmount < 4 * CHUNK_BYTES) {
      if (performance.now() - started > durationMs) {
        finished = true
        ws.send('done')
        return
      }
      ws.send(chunk, pump)
    }
  }
  pump()
}

function countingSink(stream: MuxStream): void {
  let bytes = 0
  stream.on('error', () => {})
  stream.on('data', (c: Buffer) => {
    bytes += c.length
  })
  stream.on('end', () => stream.end(String(bytes)))
}

async function source(session: MuxSession, durationMs: number): Promise<void> {
  const stream = session.open()
  stream.on('error', () => {})
  const chunk = Buffer.alloc(CHUNK_BYTES, 9)
  const started = performance.now()
  while (performance.now() - started < durationMs) {
    if (!stream.write(chunk)) await once(stream, 'drain')
  }
  stream.end()
}

function printTable(results: BenchResult[]): void {
  const width = Math.max(...results.map((r) => r.name.length))
  const lines = results.map((r) => `${r.name.padEnd(width)}  ${String(r.value).padStart(9)} ${r.unit}`)
  process.stdout.write(`${lines.join('\n')}\n`)
}

if (process.argv.includes(PEER_FLAG)) {
  void runPeer()
} else if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runMuxBench().then(printTable, (err: unknown) => {
    process.stderr.write(`${String((err as Error)?.stack ?? err)}\n`)
    process.exitCode = 1
  })
}
