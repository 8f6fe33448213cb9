// `npm run bench`: the tunnel's cost against a direct connection, with the built relay and agent.
// GET 1 KiB at 50 connections (req/s; direct, the HTTP tunnel, a TCP tunnel and the design floor
// (floor/relay.mjs) to the same origin alternate three times and the medians are reported, each
// ratio being the median of the per-round ratios), a 200 MB download (MB/s), then the mux's own
// bench if present, then the side-by-side bench against OpenSSH (side-by-side.ts).
import autocannon from 'autocannon'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { startAgent, startRelay, ROOT } from '../e2e/harness/processes.js'
import { download } from '../e2e/harness/visitor.js'
import { freePortRange } from '../e2e/harness/tcp.js'
import { BenchScope } from './bench-scope.js'
import { runTcpBench } from './tcp-bench.js'
import { startFloor } from './floor/start.js'
import { runSideBySide } from './side-by-side.js'

const CONNECTIONS = 50
const DURATION_S = 5
/** Direct and tunnel alternate this many times (side by side on a noisy machine); medians are reported. */
const ROUNDS = 3
const DOWNLOAD_BYTES = 200 * 1024 * 1024
/** The whole run is cut off after this, whatever hangs. */
const WATCHDOG_MS = 240_000
const MUX_BENCH = join(ROOT, 'packages/shared/bench/mux-throughput.bench.ts')

interface Row { what: string; direct: string; tunnel: string; ratio: string }

async function startOrigin(): Promise<{ port: number; close(): Promise<void> }> {
  const worker = new Worker(join(dirname(fileURLToPath(import.meta.url)), 'origin-worker.mjs'))
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', (msg: { port: number }) => resolve(msg.port))
    worker.once('error', reject)
  })
  return {
    port,
    close: async () => { worker.postMessage('close'); await worker.terminate() },
  }
}

interface RpsResult { rps: number; p99Ms: number; bad: number }

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

/** The run whose `key` is the median (its p99 and error count come with it). */
function medianBy<T>(runs: T[], key: (r: T) => number): T {
  const sorted = [...runs].sort((a, b) => key(a) - key(b))
  return sorted[Math.floor(sorted.length / 2)]!
}

async function requestsPerSecond(port: number, host: string, durationS: number): Promise<RpsResult> {
  const result = await autocannon({ url: `http://127.0.0.1:${port}/1k`, connections: CONNECTIONS, duration: durationS, headers: { host } })
  return { rps: result.requests.average, p99Ms: result.latency.p99, bad: result.non2xx + result.errors + result.timeouts }
}

async function megabytesPerSecond(port: number, host: string): Promise<number> {
  const res = await download(port, { host, path: `/bytes/${DOWNLOAD_BYTES}`, timeoutMs: 30_000 })
  if (res.status !== 200 || res.bytes !== DOWNLOAD_BYTES) throw new Error(`download via ${host}: status ${res.status}, ${res.bytes} bytes`)
  return DOWNLOAD_BYTES / 1e6 / (res.ms / 1000)
}

/** Runs one measurement, naming it in any error. */
async function step<T>(what: string, run: () => Promise<T>): Promise<T> {
  const started = Date.now()
  try {
    const result = await run()
    process.stdout.write(`  ${what}: ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
    return result
  } catch (err) {
    throw new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  }
}

function printTable(rows: Row[]): void {
  const header: Row = { what: 'measure', direct: 'direct', tunnel: 'tunnel', ratio: 'tunnel/direct' }
  const all = [header, ...rows]
  const width = (k: keyof Row): number => Math.max(...all.map(r => r[k].length))
  const line = (r: Row): string => `${r.what.padEnd(width('what'))}  ${r.direct.padStart(width('direct'))}  ${r.tunnel.padStart(width('tunnel'))}  ${r.ratio.padStart(width('ratio'))}`
  process.stdout.write(`\n${line(header)}\n${'-'.repeat(line(header).length)}\n${rows.map(line).join('\n')}\n`)
}

/** Calls runMuxBench() from the mux package's bench file when it exists; prints what it returns. */
async function muxBench(): Promise<void> {
  if (!existsSync(MUX_BENCH)) { process.stdout.write('\nmux bench: skipped (packages/shared/bench/mux-throughput.bench.ts not found)\n'); return }
  const mod = (await import(pathToFileURL(MUX_BENCH).href)) as { runMuxBench?: () => Promise<unknown> }
  if (typeof mod.runMuxBench !== 'function') { process.stdout.write('\nmux bench: skipped (no runMuxBench export)\n'); return }
  const results = await mod.runMuxBench()
  process.stdout.write('\nmux bench (runMuxBench):\n')
  for (const r of Array.isArray(results) ? results : [results]) process.stdout.write(`  ${JSON.stringify(r)}\n`)
}

async function main(): Promise<void> {
  const scope = new BenchScope()
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench: still running after ${WATCHDOG_MS} ms, giving up\n`)
    scope.fail()
    void scope.close().finally(() => process.exit(1))
  }, WATCHDOG_MS)
  watchdog.unref()
  try {
    const origin = await startOrigin()
    scope.teardown(() => origin.close())
    // The same origin also behind a TCP tunnel: the link and both processes without any HTTP work,
    // which shows how much of the HTTP tunnel's cost per request is the HTTP path itself.
    const { from: tcpPort } = await freePortRange(1)
    const relay = await startRelay(scope, { agents: { laptop: { hosts: ['*.localhost'], tcp_ports: [tcpPort] } } })
    await startAgent(scope, relay, { tunnels: [{ http: 'bench', to: `http://127.0.0.1:${origin.port}` }, { tcp: tcpPort, to: `127.0.0.1:${origin.port}` }] })
    // The least any relay and agent must do per request under SECURITY.md rule 2 (parse, one mux
    // stream per request, re-serialise), built from the product's own mux: the product's ceiling.
    const floorPort = await startFloor(scope, origin.port)
    const host = 'bench.localhost'
    process.stdout.write(`relay public 127.0.0.1:${relay.publicPort}, origin 127.0.0.1:${origin.port}; ${CONNECTIONS} connections, ${DURATION_S} s per run\n`)

    await step('warm-up', () => requestsPerSecond(relay.publicPort, host, 1)) // JIT and connection pools
    await step('warm-up (tcp tunnel)', () => requestsPerSecond(tcpPort, host, 1))
    await step('warm-up (design floor)', () => requestsPerSecond(floorPort, host, 1))
    const rounds: Array<{ direct: RpsResult; tunnel: RpsResult; tcp: RpsResult; floor: RpsResult }> = []
    for (let i = 1; i <= ROUNDS; i++) {
      const d = await step(`GET 1 KiB direct (${i}/${ROUNDS})`, () => requestsPerSecond(origin.port, host, DURATION_S))
      const tn = await step(`GET 1 KiB via tunnel (${i}/${ROUNDS})`, () => requestsPerSecond(relay.publicPort, host, DURATION_S))
      const tcp = await step(`GET 1 KiB via a tcp tunnel (${i}/${ROUNDS})`, () => requestsPerSecond(tcpPort, host, DURATION_S))
      const floor = await step(`GET 1 KiB via the design floor (${i}/${ROUNDS})`, () => requestsPerSecond(floorPort, host, DURATION_S))
      rounds.push({ direct: d, tunnel: tn, tcp, floor })
      process.stdout.write(`    round ${i}: direct ${d.rps.toFixed(0)}, tunnel ${tn.rps.toFixed(0)} (${(tn.rps / d.rps).toFixed(2)}), tcp tunnel ${tcp.rps.toFixed(0)} (${(tcp.rps / d.rps).toFixed(2)}), design floor ${floor.rps.toFixed(0)} (${(floor.rps / d.rps).toFixed(2)}) req/s\n`)
    }
    const direct = medianBy(rounds.map((r) => r.direct), (r) => r.rps)
    const tunnel = medianBy(rounds.map((r) => r.tunnel), (r) => r.rps)
    const ratio = median(rounds.map((r) => r.tunnel.rps / r.direct.rps))
    const tcpTunnel = medianBy(rounds.map((r) => r.tcp), (r) => r.rps)
    const tcpRatio = median(rounds.map((r) => r.tcp.rps / r.direct.rps))
    const floor = medianBy(rounds.map((r) => r.floor), (r) => r.rps)
    const floorRatio = median(rounds.map((r) => r.floor.rps / r.direct.rps))
    const directMBs = await step('download direct', () => megabytesPerSecond(origin.port, host))
    const tunnelMBs = await step('download via tunnel', () => megabytesPerSecond(relay.publicPort, host))
    printTable([
      { what: `GET 1 KiB req/s (median of ${ROUNDS})`, direct: direct.rps.toFixed(0), tunnel: tunnel.rps.toFixed(0), ratio: ratio.toFixed(2) },
      { what: '  same, raw tcp tunnel', direct: direct.rps.toFixed(0), tunnel: tcpTunnel.rps.toFixed(0), ratio: tcpRatio.toFixed(2) },
      { what: '  same, design floor (rule 2)', direct: direct.rps.toFixed(0), tunnel: floor.rps.toFixed(0), ratio: floorRatio.toFixed(2) },
      { what: 'GET 1 KiB p99 ms', direct: direct.p99Ms.toFixed(1), tunnel: tunnel.p99Ms.toFixed(1), ratio: (tunnel.p99Ms / Math.max(direct.p99Ms, 0.001)).toFixed(2) },
      { what: 'non-2xx/errors (all rounds)', direct: String(rounds.reduce((n, r) => n + r.direct.bad, 0)), tunnel: String(rounds.reduce((n, r) => n + r.tunnel.bad + r.floor.bad, 0)), ratio: '' },
      { what: '200 MB download MB/s', direct: directMBs.toFixed(1), tunnel: tunnelMBs.toFixed(1), ratio: (tunnelMBs / directMBs).toFixed(2) },
    ])
    // BENCH_ONLY=http stops here (quick side-by-side runs while tuning the request path).
    if (process.env['BENCH_ONLY'] === 'http') return
    await muxBench()
    process.stdout.write('\nTCP tunnels (200 MB each way, MB/s; direct measured in the same run):\n')
    for (const row of await runTcpBench()) process.stdout.write(`  ${row.name.padEnd(44)} ${row.value.toFixed(1).padStart(8)} ${row.unit}\n`)
  } catch (err) {
    scope.fail()
    throw err
  } finally {
    clearTimeout(watchdog)
    await scope.close()
  }
}

// BENCH_ONLY=ssh runs only the side-by-side bench (direct, Porchlight, ssh -N -R, ssh -tt -R, the
// floor; wrk load, CPU per request; writes docs/benchmarks.md); the full bench ends with it.
async function all(): Promise<void> {
  const only = process.env['BENCH_ONLY']
  if (only !== 'ssh') await main()
  if (only === undefined || only === '' || only === 'ssh') await runSideBySide()
}

all().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
})
