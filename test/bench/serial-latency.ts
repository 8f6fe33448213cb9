// Latency aid (not part of the suite): N sequential keep-alive GET /1k on one raw socket, direct,
// through the relay + agent and through the design floor, in alternating blocks of 100. Prints
// p50/p90/p99, what each path adds over direct, and the relay's and agent's CPU per request (/proc).
// `node --import=tsx --conditions=porchlight-source test/bench/serial-latency.ts [requests]`, inside
// `flock /tmp/bench.lock`. SERIAL_BASE_RELAY_BIN + SERIAL_BASE_AGENT_BIN: another build's bundles as
// column "base" (A/B in one run); SERIAL_NO_FLOOR=1 skips the floor; SERIAL_PAUSE_MS=N waits before
// measuring (to attach strace to the printed pids).
import { readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { Worker } from 'node:worker_threads'
import { startAgent, startRelay } from '../e2e/harness/processes.js'
import { BenchScope } from './bench-scope.js'
import { startFloor } from './floor/start.js'

/** One keep-alive connection; get() times one request until its full 1 KiB body arrived. */
class Client {
  private waiting: ((us: number) => void) | null = null
  private buffered = Buffer.alloc(0)
  private started = 0n
  private constructor(readonly socket: Socket) {
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk])
      const end = this.buffered.indexOf('\r\n\r\n')
      if (end === -1) return
      const m = /content-length: (\d+)/i.exec(this.buffered.subarray(0, end).toString('latin1'))
      const total = end + 4 + Number(m?.[1] ?? 0)
      if (this.buffered.length < total) return
      this.buffered = this.buffered.subarray(total)
      const cb = this.waiting
      this.waiting = null
      cb?.(Number(process.hrtime.bigint() - this.started) / 1000)
    })
  }

  static open(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(new Client(s)))
      s.once('error', reject)
    })
  }

  get(): Promise<number> {
    return new Promise((resolve) => {
      this.waiting = resolve
      this.started = process.hrtime.bigint()
      this.socket.write(`GET /1k HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`)
    })
  }
}

const requests = Number(process.argv[2] ?? 2000)
const HOST = 'bench.localhost'
const origin = new Worker(new URL('./origin-worker.mjs', import.meta.url))
const originPort = await new Promise<number>((resolve) => origin.once('message', (m: { port: number }) => resolve(m.port)))
const scope = new BenchScope()
const relay = await startRelay(scope, { agents: { laptop: { hosts: ['*.localhost'] } } })
const agent = await startAgent(scope, relay, { tunnels: [{ http: 'bench', to: `http://127.0.0.1:${originPort}` }] })
// SERIAL_BASE_RELAY_BIN / SERIAL_BASE_AGENT_BIN: a second relay + agent from another build, as column 'base'.
const baseRelayBin = process.env['SERIAL_BASE_RELAY_BIN']
const baseAgentBin = process.env['SERIAL_BASE_AGENT_BIN']
let basePort: number | null = null
let basePids: number[] = []
if (baseRelayBin !== undefined && baseAgentBin !== undefined) {
  const baseRelay = await startRelay(scope, { bin: baseRelayBin, agents: { laptop: { hosts: ['*.localhost'] } } })
  const baseAgent = await startAgent(scope, baseRelay, { bin: baseAgentBin, tunnels: [{ http: 'bench', to: `http://127.0.0.1:${originPort}` }] })
  basePort = baseRelay.publicPort
  basePids = [baseRelay.current.pid, baseAgent.pid]
}
const floor = process.env['SERIAL_NO_FLOOR'] === '1' ? null : await startFloor(scope, originPort, 'per-connection')
process.stdout.write(`relay pid ${relay.current.pid}, agent pid ${agent.pid}${floor ? `, floor pids ${floor.pids.join(' ')}` : ''}\n`)

const paths: Array<[string, number]> = [['direct', originPort], ['porchlight', relay.publicPort]]
if (basePort !== null) paths.push(['base', basePort])
if (floor) paths.push(['floor', floor.port])
/** The tunnel processes of each column, for CPU per request (utime + stime from /proc). */
const pidsOf = new Map<string, number[]>([['direct', []], ['porchlight', [relay.current.pid, agent.pid]], ['base', basePids], ['floor', floor?.pids ?? []]])
function cpuTicks(pids: number[]): number[] {
  return pids.map((pid) => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(fields[11]) + Number(fields[12]) // utime + stime
  })
}
/** Clock ticks each column's relay and agent used while it was measured. */
const ticks = new Map<string, number[]>(paths.map(([n]) => [n, [0, 0]]))
const clients = new Map<string, Client>()
for (const [name, port] of paths) clients.set(name, await Client.open(port))
const pause = Number(process.env['SERIAL_PAUSE_MS'] ?? 0)
if (pause > 0) await new Promise((r) => setTimeout(r, pause))

const samples = new Map<string, number[]>(paths.map(([n]) => [n, []]))
const BLOCK = 100
for (let done = 0; done < requests; done += BLOCK) {
  for (const [name] of paths) {
    const c = clients.get(name)!
    const before = cpuTicks(pidsOf.get(name)!)
    for (let i = 0; i < BLOCK; i++) samples.get(name)!.push(await c.get())
    const after = cpuTicks(pidsOf.get(name)!)
    ticks.set(name, ticks.get(name)!.map((t, i) => t + (after[i] ?? 0) - (before[i] ?? 0)))
  }
}
const direct = stats(samples.get('direct')!)
for (const [name] of paths) {
  const s = stats(samples.get(name)!)
  // Clock ticks are 10 ms: over thousands of requests the sum is good to a few µs per request.
  const [relayUs, agentUs] = ticks.get(name)!.map((t) => (t * 10_000) / samples.get(name)!.length)
  const cpu = name === 'direct' ? '' : `, CPU µs/request relay ${relayUs!.toFixed(0)} + agent ${agentUs!.toFixed(0)}`
  const added = name === 'direct' ? '' : `  added p50 ${(s.p50 - direct.p50).toFixed(0)} µs, p99 ${(s.p99 - direct.p99).toFixed(0)} µs${cpu}`
  process.stdout.write(`${name.padEnd(11)} p50 ${s.p50.toFixed(0)} µs  p90 ${s.p90.toFixed(0)} µs  p99 ${s.p99.toFixed(0)} µs${added}\n`)
}
for (const c of clients.values()) c.socket.destroy()
await scope.close()
origin.postMessage('close')
await origin.terminate()

function stats(us: number[]): { p50: number; p90: number; p99: number } {
  const sorted = [...us].sort((a, b) => a - b)
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99) }
}
