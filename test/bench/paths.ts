// Everything the side-by-side bench measures through, started once per run: the origin (HTTP and
// WebSocket) and a TCP sink/source, each reachable directly, through Porchlight's built relay and
// agent, through `ssh -N -R` and `ssh -tt -R`, and through the two design floors.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { startAgent, startRelay } from '../e2e/harness/processes.js'
import { freePortRange } from '../e2e/harness/tcp.js'
import type { BenchScope } from './bench-scope.js'
import { withDescendants } from './cpu.js'
import { startFloor } from './floor/start.js'
import type { Column } from './result.js'
import type { Workload } from './settings.js'
import { startSshd } from './ssh.js'
import { startSinkSource } from './tcp-bench.js'

const HERE = dirname(fileURLToPath(import.meta.url))
export const HOST = 'bench.localhost'

export interface Path {
  column: Column
  /** The origin's HTTP (and WebSocket) port through this path. */
  httpPort: number
  /** The TCP sink/source through this path, if it carries raw TCP. */
  tcpPort?: number
  /** The processes that carry this path, for CPU (none for direct). */
  pids: () => number[]
  /** The same, split: the relay side (relay, sshd) and the agent side (agent, the ssh client). */
  sides?: { relay: () => number[]; agent: () => number[] }
  /** What this path is measured with (the floors do no upgrades or TCP; the old floor only the two headline rows). */
  workloads: Workload[]
}

const HTTP_ONLY: Workload[] = ['rps50', 'one', 'bulk', 'post', 'newconn', 'cpu']
const EVERYTHING: Workload[] = [...HTTP_ONLY, 'ws', 'tcp']

async function startOrigin(scope: BenchScope): Promise<number> {
  const worker = new Worker(join(HERE, 'origin-worker.mjs'))
  scope.teardown(async () => { worker.postMessage('close'); await worker.terminate() })
  return new Promise<number>((resolve, reject) => {
    worker.once('message', (msg: { port: number }) => resolve(msg.port))
    worker.once('error', reject)
  })
}

export async function startPaths(scope: BenchScope, columns: Column[], sshd: string | null, wsConnections: number): Promise<Path[]> {
  const origin = await startOrigin(scope)
  const sink = await startSinkSource(scope)
  const paths: Path[] = [{ column: 'direct', httpPort: origin, tcpPort: sink, pids: () => [], workloads: EVERYTHING }]
  if (columns.includes('porchlight')) {
    const { from: tcpPort } = await freePortRange(1)
    // Limits raised only as far as the WebSocket workload needs (its connections all come from 127.0.0.1).
    const room = Math.max(1024, wsConnections * 2)
    const relay = await startRelay(scope, {
      agents: { laptop: { hosts: ['*.localhost'], tcp_ports: [tcpPort] } },
      limits: { max_connections_per_ip: room, max_streams_per_agent: room },
    })
    const agent = await startAgent(scope, relay, { tunnels: [{ http: 'bench', to: `http://127.0.0.1:${origin}` }, { tcp: tcpPort, to: `127.0.0.1:${sink}` }] })
    paths.push({ column: 'porchlight', httpPort: relay.publicPort, tcpPort, pids: () => [relay.current.pid, agent.pid], sides: { relay: () => [relay.current.pid], agent: () => [agent.pid] }, workloads: EVERYTHING })
  }
  if (sshd && (columns.includes('sshN') || columns.includes('sshTT'))) {
    const server = await startSshd(sshd)
    scope.teardown(() => server.close())
    for (const [column, mode] of [['sshN', '-N'], ['sshTT', '-tt']] as const) {
      if (!columns.includes(column)) continue
      const fwd = await server.forward([origin, sink], mode)
      // sshd's listener, its per-connection monitor and session processes, and the ssh client.
      const sides = { relay: () => withDescendants(server.pid), agent: () => [fwd.clientPid] }
      paths.push({ column, httpPort: fwd.ports[0]!, tcpPort: fwd.ports[1]!, pids: () => [...sides.relay(), ...sides.agent()], sides, workloads: EVERYTHING })
    }
  }
  if (columns.includes('floor')) {
    const floor = await startFloor(scope, origin, 'per-connection')
    paths.push({ column: 'floor', httpPort: floor.port, pids: () => floor.pids, sides: { relay: () => [floor.pids[0]!], agent: () => [floor.pids[1]!] }, workloads: HTTP_ONLY })
  }
  if (columns.includes('oldFloor')) {
    const old = await startFloor(scope, origin, 'per-request')
    paths.push({ column: 'oldFloor', httpPort: old.port, pids: () => old.pids, sides: { relay: () => [old.pids[0]!], agent: () => [old.pids[1]!] }, workloads: ['rps50', 'cpu'] })
  }
  return paths
}
