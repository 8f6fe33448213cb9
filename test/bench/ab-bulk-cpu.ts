// Measuring aid (not part of the suite): relay + agent CPU (utime + stime from /proc) per MiB for a
// fixed amount of work, GET 10 MB AB_COUNT times with curl at 4 in parallel, for each of several builds
// running side by side and taking turns (one warm-up turn, then AB_REPS). A fixed amount of work and
// interleaved turns make CPU per MiB far steadier on a shared machine than the bench's 2 s rounds.
// AB_BUILDS=/path/to/base,/path/to/this flock /tmp/bench.lock node --import=tsx --conditions=porchlight-source test/bench/ab-bulk-cpu.ts
// (each path a checkout with `npm run build` done; AB_PATH=/bytes/N another size).
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import { startAgent, startRelay } from '../e2e/harness/processes.js'
import { BenchScope } from './bench-scope.js'

const builds = (process.env['AB_BUILDS'] ?? '').split(',')
const reps = Number(process.env['AB_REPS'] ?? 4)
const count = Number(process.env['AB_COUNT'] ?? 60)
const path = process.env['AB_PATH'] ?? '/bytes/10000000'
const origin = new Worker(new URL('./origin-worker.mjs', import.meta.url))
const port = await new Promise<number>((resolve) => origin.once('message', (m: { port: number }) => resolve(m.port)))
const scope = new BenchScope()
const pairs = []
for (const b of builds) {
  const relay = await startRelay(scope, { bin: `${b}/packages/server/dist/bundle/bin.js` })
  const agent = await startAgent(scope, relay, { bin: `${b}/packages/agent/dist/bundle/bin.js`, tunnels: [{ http: 'bench', to: `http://127.0.0.1:${port}` }] })
  pairs.push({ b, relay, agent })
}
const ticks = (pid: number): number => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' '); return Number(f[11]) + Number(f[12]) }
const results = new Map<string, number[]>(builds.map((b) => [b, []]))
const rates = new Map<string, number[]>(builds.map((b) => [b, []]))
for (let r = -1; r < reps; r++) {
  for (const p of (r % 2 === 0 ? pairs : [...pairs].reverse())) {
    const url = `http://127.0.0.1:${p.relay.publicPort}${path}`
    const args = ['-sS', '--parallel', '--parallel-max', '4', '-H', 'Host: bench.localhost', '-w', '%{size_download}\n']
    for (let i = 0; i < count; i++) args.push('-o', '/dev/null', url)
    const c0 = ticks(p.relay.pid) + ticks(p.agent.pid)
    const t0 = performance.now()
    const out = spawnSync('curl', args, { encoding: 'utf8' })
    const ms = performance.now() - t0
    const c1 = ticks(p.relay.pid) + ticks(p.agent.pid)
    const bytes = out.stdout.trim().split('\n').reduce((a, s) => a + Number(s), 0)
    const mib = bytes / 1048576
    if (r < 0) continue // warm-up
    results.get(p.b)!.push(((c1 - c0) * 10) / mib)
    rates.get(p.b)!.push(bytes / 1e3 / ms)
  }
}
const med = (v: number[]): number => { const s = [...v].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2 }
for (const b of builds) process.stdout.write(`${b}: cpu ms/MiB median ${med(results.get(b)!).toFixed(2)} [${results.get(b)!.map((x) => x.toFixed(2)).join(' ')}]  MB/s median ${med(rates.get(b)!).toFixed(0)} [${rates.get(b)!.map((x) => x.toFixed(0)).join(' ')}]\n`)
await scope.close()
origin.postMessage('close')
await origin.terminate()
process.exit(0)
