// The side-by-side rounds of issue 11: each round runs every workload once on every path, the
// paths alternating within each workload so that neighbours in time are compared. Returns the raw
// measures of every round; summary.ts takes the medians.
import { fixedRate, withCpu } from './cpu.js'
import { HOST, type Path } from './paths.js'
import type { Measures, Round } from './result.js'
import type { Settings, Workload } from './settings.js'
import { transfer } from './tcp-bench.js'
import { runWrk, type WrkResult } from './wrk.js'
import { runWsBench } from './ws-bench.js'

const MIB = 1024 * 1024
const SMALL = '/1k'

export interface RoundContext {
  settings: Settings
  postScript: string
  say: (line: string) => void
  /** Measurements that threw, one line each (the run goes on without them). */
  failures: string[]
}

type Runner = (p: Path, ctx: RoundContext) => Promise<Measures>

function mbs(r: WrkResult): number {
  return r.bytes / 1e6 / r.seconds
}

/** `{ [key]: CPU ms per MiB moved }` for paths with processes of their own, else nothing. */
function perMiB(key: string, p: Path, cpuS: number, bytes: number): Measures {
  return p.pids().length > 0 && bytes > 0 ? { [key]: (cpuS * 1000) / (bytes / MIB) } : {}
}

function wrk(p: Path, path: string, connections: number, durationS: number, extra: { headers?: string[]; script?: string } = {}): Promise<WrkResult> {
  return runWrk({ port: p.httpPort, path, host: HOST, connections, durationS, ...extra })
}

const RUNNERS: Record<Exclude<Workload, 'memory'>, Runner> = {
  async rps50(p, { settings }) {
    const r = await wrk(p, SMALL, 50, settings.wrk.rps50S)
    return { rps50: r.rps, p50Ms50: r.p50Ms, p99Ms50: r.p99Ms, errors: r.errors }
  },
  async one(p, { settings }) {
    const r = await wrk(p, SMALL, 1, settings.wrk.oneS)
    return { oneP50Ms: r.p50Ms, oneP99Ms: r.p99Ms, errors: r.errors }
  },
  async bulk(p, { settings }) {
    const { result: r, cpuS } = await withCpu(p.pids, () => wrk(p, `/bytes/${settings.bulkBytes}`, 4, settings.wrk.bulkS))
    return { bulkMBs: mbs(r), ...perMiB('bulkCpuMsPerMiB', p, cpuS, r.bytes), errors: r.errors }
  },
  async post(p, { settings, postScript }) {
    const { result: r, cpuS } = await withCpu(p.pids, () => wrk(p, '/echo', 4, settings.wrk.postS, { script: postScript }))
    // Bytes read are the echoed bodies (plus small heads); as many went up.
    return { postMBs: mbs(r), ...perMiB('postCpuMsPerMiB', p, cpuS, 2 * r.bytes), errors: r.errors }
  },
  async newconn(p, { settings }) {
    const r = await wrk(p, SMALL, 50, settings.wrk.newConnS, { headers: ['Connection: close'] })
    return { newConnRps: r.rps, newConnP99Ms: r.p99Ms, errors: r.errors }
  },
  async cpu(p, { settings }): Promise<Measures> {
    if (p.pids().length === 0) return {}
    const { rate, seconds, sockets } = settings.fixedRate
    const r = await fixedRate({ port: p.httpPort, host: HOST, path: SMALL, rate, durationS: seconds, sockets, pids: p.pids, ...(p.sides ? { groups: p.sides } : {}) })
    const m: Measures = { cpuUsPerRequest: r.cpuUsPerRequest, cpuCompletedShare: r.completed / r.offered, cpuAchievedRps: r.achievedRps, errors: r.errors }
    if (r.cpuUsPerRequestBy['relay'] !== undefined) m['cpuUsPerRequestRelay'] = r.cpuUsPerRequestBy['relay']
    if (r.cpuUsPerRequestBy['agent'] !== undefined) m['cpuUsPerRequestAgent'] = r.cpuUsPerRequestBy['agent']
    return m
  },
  async ws(p, { settings }) {
    const m = await runWsBench({ port: p.httpPort, host: HOST, ...settings.ws, pids: p.pids })
    if (p.pids().length === 0) { delete m['wsCpuUsPerEcho']; delete m['wsIdleCpuMsPerS'] }
    return m
  },
  async tcp(p, { settings }): Promise<Measures> {
    if (p.tcpPort === undefined) return {}
    const port = p.tcpPort
    const up = await withCpu(p.pids, () => transfer(port, 'U', settings.tcpBytes, `tcp upload via ${p.column}`))
    const down = await withCpu(p.pids, () => transfer(port, 'D', settings.tcpBytes, `tcp download via ${p.column}`))
    return { tcpUpMBs: up.result, tcpDownMBs: down.result, ...perMiB('tcpCpuMsPerMiB', p, up.cpuS + down.cpuS, 2 * settings.tcpBytes) }
  },
}

/** Short warm-up on every path (JIT, pools, mux windows) before the first round counts. */
export async function warmUp(paths: Path[]): Promise<void> {
  for (const p of paths) await wrk(p, SMALL, 50, 1)
}

export async function runRounds(paths: Path[], ctx: RoundContext): Promise<Round[]> {
  const { settings, say } = ctx
  const rounds: Round[] = []
  const workloads = settings.workloads.filter((w): w is Exclude<Workload, 'memory'> => w !== 'memory')
  for (let i = 1; i <= settings.rounds; i++) {
    const round: Round = {}
    for (const w of workloads) {
      const started = Date.now()
      for (const p of paths.filter((x) => x.workloads.includes(w))) {
        let m: Measures
        try {
          m = await RUNNERS[w](p, ctx)
        } catch (err) {
          // One failed measurement is reported, not fatal: the rest of the run still counts.
          const line = `${w} via ${p.column} (round ${i}): ${err instanceof Error ? err.message : String(err)}`
          ctx.failures.push(line)
          say(`  failed: ${line}`)
          m = { failed: 1 }
        }
        const into = (round[p.column] ??= {})
        for (const [k, v] of Object.entries(m)) into[k] = k === 'errors' || k === 'failed' ? (into[k] ?? 0) + v : v
      }
      say(`  round ${i}/${settings.rounds} ${w}: ${((Date.now() - started) / 1000).toFixed(1)} s`)
    }
    rounds.push(round)
  }
  return rounds
}
