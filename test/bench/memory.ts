// Memory of the built relay and agent (issue 11): RSS idle, RSS added per idle agent, RSS growth
// during a bulk download, and 10,000 concurrent streams on one agent, which must all complete.
// `measureMemory()` is called by run.ts when present; run this file alone to print just these rows:
//   node --import=tsx --conditions=porchlight-source test/bench/memory.ts [--quick]
// or only the idle rows, the median of N fresh relay + agent pairs (docs/performance.md, Memory):
//   node --import=tsx --conditions=porchlight-source test/bench/memory.ts --idle [--runs 3]
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { pathToFileURL } from 'node:url'
import { startHttpOrigin } from '../e2e/harness/origins.js'
import { startAgent, startRelay, type AgentProcess, type RelayProcess } from '../e2e/harness/processes.js'
import { freePortRange } from '../e2e/harness/tcp.js'
import { visitStream } from '../e2e/harness/visitor.js'
import { BenchScope } from './bench-scope.js'
import { connectIdleAgents } from './idle-agents.js'

export interface MemoryRow {
  key: string
  value: number
}

const MiB = 1024 * 1024
const FULL = { idleAgents: 1000, transferBytes: 1024 * MiB, streams: 10_000, settleMs: 2000 }
const QUICK = { idleAgents: 100, transferBytes: 128 * MiB, streams: 1_000, settleMs: 1000 }
/** TCP tunnels the streams are spread over (the relay takes at most 1,024 connections per port). */
const STREAM_TUNNELS = 10
/** Connections being opened at once while the streams ramp up (the listen backlog is 511). */
const STREAM_RAMP = 200
/** Time for all streams to be open at once and then to finish; past it, the rest count as failed. */
const STREAMS_TIMEOUT_MS = { full: 90_000, quick: 15_000 }
const SAMPLE_EVERY_MS = 100

/** VmRSS of a process in bytes (0 once it is gone). */
function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m?.[1] !== undefined ? Number(m[1]) * 1024 : 0
  } catch {
    return 0
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const round1 = (n: number): number => Math.round(n * 10) / 10

/** Highest RSS of each pid while `work` runs, sampled every SAMPLE_EVERY_MS. */
async function peakRss<T>(pids: number[], work: () => Promise<T>): Promise<{ result: T; peaks: number[] }> {
  const peaks = pids.map(rssBytes)
  const timer = setInterval(() => pids.forEach((pid, i) => { peaks[i] = Math.max(peaks[i]!, rssBytes(pid)) }), SAMPLE_EVERY_MS)
  try {
    const result = await work()
    return { result, peaks }
  } finally {
    clearInterval(timer)
  }
}

export async function measureMemory(opts: { quick: boolean; idleOnly?: boolean }, log: (line: string) => void = () => undefined): Promise<MemoryRow[]> {
  const size = opts.quick ? QUICK : FULL
  const scope = new BenchScope()
  let echo: ChildProcess | null = null
  try {
    const origin = await startHttpOrigin(scope)
    const ports = await freePortRange(STREAM_TUNNELS)
    const relay = await startRelay(scope, {
      agents: { laptop: { hosts: ['*.localhost'], tcp_ports: [`${ports.from}-${ports.to}`] }, fleet: { hosts: ['*.localhost'] } },
      limits: { max_streams_per_agent: 2 * size.streams, max_connections_per_ip: 2 * size.streams },
    })
    const echoServer = await startEchoServer()
    echo = echoServer.child
    const tcpTunnels = Array.from({ length: STREAM_TUNNELS }, (_, k) => ({ tcp: ports.from + k, to: `127.0.0.1:${echoServer.port}` }))
    const agent = await startAgent(scope, relay, { name: 'laptop', tunnels: [{ http: 'big', to: origin.url }, ...tcpTunnels], forwarding: 1 + STREAM_TUNNELS })
    await sleep(size.settleMs)
    const relayIdle = rssBytes(relay.pid)
    const agentIdle = rssBytes(agent.pid)
    log(`idle: relay ${(relayIdle / MiB).toFixed(1)} MiB, agent ${(agentIdle / MiB).toFixed(1)} MiB`)
    if (opts.idleOnly === true) return [{ key: 'relayIdleMiB', value: round1(relayIdle / MiB) }, { key: 'agentIdleMiB', value: round1(agentIdle / MiB) }]

    const perAgent = await relayPerIdleAgent(relay, size.idleAgents, size.settleMs, log)
    const transfer = await transferPeaks(relay, agent, size.transferBytes, log)
    const streams = await concurrentStreams(relay, agent, ports.from, size.streams, opts.quick ? STREAMS_TIMEOUT_MS.quick : STREAMS_TIMEOUT_MS.full, log)
    return [
      { key: 'relayIdleMiB', value: round1(relayIdle / MiB) },
      { key: 'agentIdleMiB', value: round1(agentIdle / MiB) },
      { key: 'relayPerIdleAgentKiB', value: round1(perAgent / 1024) },
      { key: 'relayPeakOverIdleMiB', value: round1(transfer.relay / MiB) },
      { key: 'agentPeakOverIdleMiB', value: round1(transfer.agent / MiB) },
      { key: 'streamsCompleted', value: streams.completed },
      { key: 'streamsOffered', value: size.streams },
    ]
  } catch (err) {
    scope.fail()
    throw err
  } finally {
    echo?.kill()
    await scope.close()
  }
}

/** Relay RSS added per agent while `count` idle agents are linked (measured, then they leave). */
async function relayPerIdleAgent(relay: RelayProcess, count: number, settleMs: number, log: (line: string) => void): Promise<number> {
  const before = rssBytes(relay.pid)
  const fleet = await connectIdleAgents({ agentsUrl: relay.agentsUrl, token: relay.tokens['fleet']!, count, hostPrefix: 'fleet' })
  await sleep(settleMs)
  const after = rssBytes(relay.pid)
  await fleet.close()
  await sleep(settleMs)
  log(`${fleet.count} idle agents: relay ${(before / MiB).toFixed(1)} -> ${(after / MiB).toFixed(1)} MiB`)
  return Math.max(0, after - before) / count
}

/** RSS growth of relay and agent over their RSS just before a download of `bytes`. */
async function transferPeaks(relay: RelayProcess, agent: AgentProcess, bytes: number, log: (line: string) => void): Promise<{ relay: number; agent: number }> {
  const idle = [rssBytes(relay.pid), rssBytes(agent.pid)]
  const started = Date.now()
  const { result: received, peaks } = await peakRss([relay.pid, agent.pid], async () => {
    const res = await visitStream(relay.publicPort, { host: 'big.localhost', path: `/bytes/${bytes}`, timeoutMs: 120_000 })
    let n = 0
    for await (const chunk of res) n += (chunk as Buffer).length
    return n
  })
  if (received !== bytes) throw new Error(`download: ${received} of ${bytes} bytes arrived`)
  const ms = Date.now() - started
  log(`${bytes / MiB} MiB download in ${ms} ms: relay peak ${(peaks[0]! / MiB).toFixed(1)} MiB, agent peak ${(peaks[1]! / MiB).toFixed(1)} MiB`)
  return { relay: Math.max(0, peaks[0]! - idle[0]!), agent: Math.max(0, peaks[1]! - idle[1]!) }
}

/**
 * `count` TCP connections through the agent's tunnels, all open at the same moment: each sends a
 * byte and waits for its echo; once every one has, each sends a second byte, reads its echo and
 * closes. Returns how many went through both round trips and closed cleanly.
 */
async function concurrentStreams(relay: RelayProcess, agent: AgentProcess, firstPort: number, count: number, timeoutMs: number, log: (line: string) => void): Promise<{ completed: number }> {
  const started = Date.now()
  let open = 0
  let completed = 0
  let releaseAll: () => void = () => undefined
  const allOpen = new Promise<void>((resolve) => { releaseAll = resolve })
  const deadline = setTimeout(releaseAll, timeoutMs)
  const sockets: Socket[] = []
  const one = (i: number): Promise<void> => new Promise<void>((resolve) => {
    const socket = connect(firstPort + (i % STREAM_TUNNELS), '127.0.0.1')
    sockets.push(socket)
    let echoed = 0
    let opened = false
    socket.on('error', () => resolve())
    socket.on('close', () => { if (echoed === 2) completed++; resolve() })
    socket.on('data', (chunk: Buffer) => {
      echoed += chunk.length
      if (echoed === 1 && !opened) {
        opened = true
        if (++open === count) releaseAll()
        void allOpen.then(() => socket.write('b'))
      } else if (echoed === 2) socket.end()
    })
    socket.write('a')
    opening.add(socket)
    socket.once('data', () => { opening.delete(socket); wake() })
    socket.once('close', () => { opening.delete(socket); wake() })
  })
  // Ramp: at most STREAM_RAMP connections waiting for their first echo at a time.
  const opening = new Set<Socket>()
  let wake: () => void = () => undefined
  const done: Array<Promise<void>> = []
  const { peaks } = await peakRss([relay.pid, agent.pid], async () => {
    for (let i = 0; i < count && Date.now() - started < timeoutMs; i++) {
      while (opening.size >= STREAM_RAMP) await new Promise<void>((resolve) => { wake = resolve })
      done.push(one(i))
    }
    await allOpen
    const openAtOnce = open
    const finish = setTimeout(() => { for (const s of sockets) s.destroy() }, Math.max(5000, timeoutMs - (Date.now() - started)))
    await Promise.all(done)
    clearTimeout(finish)
    return openAtOnce
  })
  clearTimeout(deadline)
  log(`${count} streams: ${open} open at once, ${completed} completed in ${Date.now() - started} ms; relay peak ${(peaks[0]! / MiB).toFixed(1)} MiB, agent peak ${(peaks[1]! / MiB).toFixed(1)} MiB`)
  return { completed }
}

/**
 * A TCP echo service in its own process, so its 10,000 sockets do not count against this
 * process's descriptor limit (which holds the visitors' ends).
 */
async function startEchoServer(): Promise<{ child: ChildProcess; port: number }> {
  const source = `
    const server = require('node:net').createServer((s) => { s.on('error', () => s.destroy()); s.pipe(s) })
    server.maxConnections = 100000
    server.listen(0, '127.0.0.1', 2048, () => process.stdout.write(server.address().port + '\\n'))
    process.on('disconnect', () => process.exit(0))
  `
  const child = spawn(process.execPath, ['-e', source], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`echo server exited with ${code}`)))
    child.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim())))
  })
  return { child, port }
}

/** The idle rows of `runs` fresh pairs, one after another, and their medians. */
async function idleMedians(runs: number, log: (line: string) => void): Promise<MemoryRow[]> {
  const samples: MemoryRow[][] = []
  for (let i = 0; i < runs; i++) samples.push(await measureMemory({ quick: true, idleOnly: true }, log))
  const median = (key: string): number => {
    const values = samples.map((rows) => rows.find((r) => r.key === key)?.value ?? 0).sort((a, b) => a - b)
    return values[Math.floor(values.length / 2)] ?? 0
  }
  return [{ key: 'relayIdleMiB', value: median('relayIdleMiB') }, { key: 'agentIdleMiB', value: median('agentIdleMiB') }]
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const quick = process.argv.includes('--quick')
  const runsAt = process.argv.indexOf('--runs')
  const runs = runsAt === -1 ? 3 : Number(process.argv[runsAt + 1])
  if (!Number.isInteger(runs) || runs < 1 || runs > 20) {
    process.stderr.write('PL_ERR_USAGE: --runs takes a whole number from 1 to 20\n')
    process.exit(2)
  }
  const log = (line: string): void => { process.stderr.write(`# ${line}\n`) }
  const measured = process.argv.includes('--idle') ? idleMedians(runs, log) : measureMemory({ quick }, log)
  measured.then((rows) => {
    for (const r of rows) process.stdout.write(`${r.key.padEnd(24)} ${String(r.value).padStart(10)}\n`)
    process.exit(0)
  }, (err: unknown) => {
    process.stderr.write(`memory bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    process.exit(1)
  })
}
