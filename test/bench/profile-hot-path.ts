// Profiling aid (not part of the suite): relay + agent under `wrk` GET 1 KiB at 50 connections, both
// run with --cpu-prof; prints req/s and where the .cpuprofile files went, plus the heaviest
// self-time functions of each. `node --import=tsx --conditions=porchlight-source test/bench/profile-hot-path.ts [seconds]`
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { ROOT, startAgent, startRelay } from '../e2e/harness/processes.js'
import { BenchScope } from './bench-scope.js'

const seconds = Number(process.argv[2] ?? 8)
const dir = mkdtempSync(join(tmpdir(), 'porchlight-prof-'))
// The origin runs in a worker: spawnSync(wrk) blocks this thread's event loop.
const origin = new Worker(new URL('./origin-worker.mjs', import.meta.url))
const port = await new Promise<number>((resolve) => origin.once('message', (m: { port: number }) => resolve(m.port)))
const scope = new BenchScope()
process.env['PORCHLIGHT_E2E_NODE_ARGS'] = `--cpu-prof --cpu-prof-dir=${dir}`
// tsc's one file per module, not the minified bundles, so the profiles name real functions
// (PORCHLIGHT_E2E_RELAY_BIN / _AGENT_BIN profile another build).
const relayBin = process.env['PORCHLIGHT_E2E_RELAY_BIN'] ?? join(ROOT, 'packages/server/dist/bin.js')
const agentBin = process.env['PORCHLIGHT_E2E_AGENT_BIN'] ?? join(ROOT, 'packages/agent/dist/bin.js')
const relay = await startRelay(scope, { bin: relayBin })
const agent = await startAgent(scope, relay, { bin: agentBin, tunnels: [{ http: 'bench', to: `http://127.0.0.1:${port}` }] })
const probe = spawnSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Host: bench.localhost', `http://127.0.0.1:${relay.publicPort}/1k`], { encoding: 'utf8' })
process.stdout.write(`probe: ${probe.stdout} ${probe.stderr}\n`)
// PROFILE_PATH=/bytes/10000000 PROFILE_CONNECTIONS=4: the bulk case instead.
const path = process.env['PROFILE_PATH'] ?? '/1k'
const connections = process.env['PROFILE_CONNECTIONS'] ?? '50'
// PROFILE_NEW_CONNECTIONS=1: a new connection per request (wrk closes after each answer).
const perRequest = process.env['PROFILE_NEW_CONNECTIONS'] === '1' ? ['-H', 'Connection: close'] : []
const r = await runAsync('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '-H', 'Host: bench.localhost', ...perRequest, `http://127.0.0.1:${relay.publicPort}${path}`], { encoding: 'utf8' })
process.stdout.write(r.stdout)
// A clean exit writes the profiles (the scope's teardown may SIGKILL).
process.kill(agent.pid, 'SIGTERM')
process.kill(relay.pid, 'SIGTERM')
await new Promise((res) => setTimeout(res, 3000))
await scope.close()
origin.postMessage('close')
await origin.terminate()
await new Promise((res) => setTimeout(res, 1500))
for (const side of ['relay', 'agent']) {
  const pid = side === 'relay' ? relay.pid : agent.pid
  for (const f of readdirSync(dir).filter((name) => name.includes(`.${pid}.`))) {
    const prof = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>; samples: number[] }
    const counts = new Map<number, number>()
    for (const s of prof.samples) counts.set(s, (counts.get(s) ?? 0) + 1)
    const byName = new Map<string, number>()
    for (const n of prof.nodes) {
      const c = counts.get(n.id) ?? 0
      if (c === 0) continue
      const key = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/^.*node_modules\//, 'nm/').replace(/^file:\/\/.*packages\//, '')}:${n.callFrame.lineNumber}`
      byName.set(key, (byName.get(key) ?? 0) + c)
    }
    const total = prof.samples.length
    process.stdout.write(`\n== ${side} ${join(dir, f)} (${total} samples)\n`)
    for (const [k, c] of [...byName].sort((a, b) => b[1] - a[1]).slice(0, 25)) process.stdout.write(`${(100 * c / total).toFixed(1).padStart(5)}% ${k}\n`)
  }
}

/** wrk without blocking this event loop (the children's log pipes must keep draining). */
function runAsync(cmd: string, args: string[], _opts: unknown): Promise<{ stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] })
    let stdout = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.on('close', () => resolve({ stdout }))
  })
}
