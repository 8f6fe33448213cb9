// TCP throughput of the built relay and agent next to a direct connection: a 200 MB transfer in
// each direction, direct, through a reverse tcp tunnel, and through an outbound forward.
// `runTcpBench()` is called by run.ts; run this file alone to print just these rows.
import { connect, type Socket } from 'node:net'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { startAgent, startRelay } from '../e2e/harness/processes.js'
import { freePort } from '../e2e/harness/ports.js'
import { freePortRange } from '../e2e/harness/tcp.js'
import type { Scope } from '../e2e/harness/scope.js'
import { BenchScope } from './bench-scope.js'

export interface BenchRow {
  name: string
  value: number
  unit: string
}

const TRANSFER_BYTES = 200 * 1024 * 1024
const BLOCK = Buffer.alloc(64 * 1024, 0x5a)
/** One transfer must not take longer than this, whatever hangs. */
const TRANSFER_TIMEOUT_MS = 120_000

/*
 * The sink/source service, in a worker thread so it does not share the client's event loop.
 * A connection starts with 9 bytes: 'U' or 'D' and a uint64 BE byte count. 'U': the server reads
 * that many bytes until the client's FIN and answers the count it got (uint64 BE), then FIN.
 * 'D': the server sends that many bytes, then FIN.
 */
const SERVER_SOURCE = `
const { createServer } = require('node:net')
const { parentPort } = require('node:worker_threads')
const block = Buffer.alloc(64 * 1024, 0xa5)
const server = createServer({ allowHalfOpen: true }, socket => {
  socket.setNoDelay(true)
  socket.on('error', () => socket.destroy())
  let head = Buffer.alloc(0)
  let mode = null
  let left = 0
  let received = 0
  const onData = chunk => {
    if (mode === null) {
      head = Buffer.concat([head, chunk])
      if (head.length < 9) return
      mode = String.fromCharCode(head[0])
      left = Number(head.readBigUInt64BE(1))
      chunk = head.subarray(9)
      if (mode === 'D') { socket.off('data', onData); socket.resume(); pump(); return }
    }
    received += chunk.length
  }
  const pump = () => {
    while (left > 0) {
      const n = Math.min(left, block.length)
      left -= n
      if (!socket.write(n === block.length ? block : block.subarray(0, n))) { socket.once('drain', pump); return }
    }
    socket.end()
  }
  socket.on('data', onData)
  socket.on('end', () => {
    if (mode !== 'U') { if (mode === null) socket.end(); return }
    const answer = Buffer.alloc(8)
    answer.writeBigUInt64BE(BigInt(received))
    socket.end(answer)
  })
})
server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port))
parentPort.on('message', msg => { if (msg === 'close') server.close() })
`

export async function startSinkSource(scope: Scope): Promise<number> {
  const worker = new Worker(SERVER_SOURCE, { eval: true, execArgv: [] })
  scope.teardown(async () => { worker.postMessage('close'); await worker.terminate() })
  return new Promise<number>((resolve, reject) => {
    worker.once('message', (port: number) => resolve(port))
    worker.once('error', reject)
  })
}

function connectTo(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
    socket.once('connect', () => { socket.setNoDelay(true); resolve(socket) })
    socket.once('error', reject)
  })
}

function command(mode: 'U' | 'D', bytes: number): Buffer {
  const head = Buffer.alloc(9)
  head.write(mode, 0, 'latin1')
  head.writeBigUInt64BE(BigInt(bytes), 1)
  return head
}

/** Runs one transfer and resolves with MB/s (1 MB = 10^6 bytes, as run.ts reports). */
export async function transfer(port: number, mode: 'U' | 'D', bytes: number, what: string): Promise<number> {
  const socket = await connectTo(port)
  const started = process.hrtime.bigint()
  const done = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`${what}: not done after ${TRANSFER_TIMEOUT_MS} ms`)) }, TRANSFER_TIMEOUT_MS)
    const chunks: Buffer[] = []
    let received = 0
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length
      if (mode === 'U') chunks.push(chunk)
    })
    socket.once('error', err => { clearTimeout(timer); reject(err) })
    socket.once('end', () => {
      clearTimeout(timer)
      socket.destroy()
      const got = mode === 'U' ? (chunks.length > 0 ? Number(Buffer.concat(chunks).readBigUInt64BE(0)) : -1) : received
      if (got !== bytes) reject(new Error(`${what}: ${got} of ${bytes} bytes arrived`))
      else resolve(received)
    })
  })
  socket.write(command(mode, bytes))
  if (mode === 'U') {
    for (let sent = 0; sent < bytes;) {
      const n = Math.min(BLOCK.length, bytes - sent)
      sent += n
      if (!socket.write(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n))) await new Promise<void>(resolve => socket.once('drain', () => resolve()))
    }
    socket.end()
  }
  await done
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  return bytes / 1e6 / seconds
}

/**
 * Starts a sink/source service, a relay and an agent with one reverse tcp tunnel and one forward
 * to it, and measures a 200 MB upload and download over each path. Rows are MB/s.
 */
export async function runTcpBench(): Promise<BenchRow[]> {
  const scope = new BenchScope()
  try {
    const servicePort = await startSinkSource(scope)
    const { from: tunnelPort } = await freePortRange(1)
    const forwardPort = await freePort()
    const relay = await startRelay(scope, { agents: { bench: { tcp_ports: [tunnelPort], outbound: [`127.0.0.1:${servicePort}`] } } })
    await startAgent(scope, relay, {
      name: 'bench',
      tunnels: [{ tcp: tunnelPort, to: `127.0.0.1:${servicePort}` }, { forward: `127.0.0.1:${forwardPort}`, to: `127.0.0.1:${servicePort}` }],
      waitFor: /"msg":"tunnel ready"/,
    })
    const paths: Array<[string, number]> = [['direct', servicePort], ['reverse tunnel', tunnelPort], ['forward', forwardPort]]
    // Warm-up: JIT, mux windows, socket buffers.
    for (const [, port] of paths) await transfer(port, 'D', 8 * 1024 * 1024, 'warm-up')
    const rows: BenchRow[] = []
    for (const [mode, label] of [['U', 'upload'], ['D', 'download']] as const) {
      for (const [path, port] of paths) {
        const value = await transfer(port, mode, TRANSFER_BYTES, `${label} ${path}`)
        rows.push({ name: `tcp 200 MB ${label}, ${path}`, value: Math.round(value * 10) / 10, unit: 'MB/s' })
      }
    }
    return rows
  } catch (err) {
    scope.fail()
    throw err
  } finally {
    await scope.close()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runTcpBench().then(rows => {
    for (const r of rows) process.stdout.write(`${r.name.padEnd(36)} ${r.value.toFixed(1).padStart(8)} ${r.unit}\n`)
    process.exit(0)
  }, (err: unknown) => {
    process.stderr.write(`tcp bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    process.exit(1)
  })
}
