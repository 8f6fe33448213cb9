// Idle memory of the built relay and agent (issue 11): what a serving process has loaded before
// anyone uses it, its RSS, and V8's optimizing compiler held until load (optimizer-hold.ts).
import { readFileSync } from 'node:fs'
import { Agent } from 'node:http'
import { join } from 'node:path'
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { startAgent, startRelay, ROOT } from './harness/processes.js'
import { visit } from './harness/visitor.js'

const RECORD_IMPORTS = join(ROOT, 'test/e2e/fixtures/record-imports.mjs')
const MiB = 1024 * 1024
/**
 * Idle RSS bounds, with room for a loaded machine: measured 57 MiB (relay) and 54.5 MiB (agent)
 * as bundles, 61 and 59.5 MiB as tsc's modules, 87 and 72 MiB before any of it (docs/performance.md, Memory).
 */
const RELAY_IDLE_LIMIT_MIB = 64
const AGENT_IDLE_LIMIT_MIB = 61
/** How long the pair sits idle before it is looked at. */
const SETTLE_MS = 1500
/** --trace-opt's line for a function TurboFan finished optimizing. */
const OPTIMIZED = /^\[completed optimizing /

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m?.[1] !== undefined ? Number(m[1]) * 1024 : 0
}

/**
 * Packages among the module URLs a recorded process resolved: a node_modules/NAME/ path, or a chunk
 * of a bundle (dist/bundle/CHUNK.js), whose manifest.json names the packages built into it.
 */
function packagesIn(file: string): Set<string> {
  let text = ''
  try { text = readFileSync(file, 'utf8') } catch { /* nothing recorded yet */ }
  const names = new Set<string>()
  for (const m of text.matchAll(/\/node_modules\/((?:@[^/]+\/)?[^/]+)\//g)) names.add(m[1]!)
  for (const m of text.matchAll(/^file:\/\/(\/\S+\/dist\/bundle)\/([\w-]+\.js)$/gm)) {
    const manifest = JSON.parse(readFileSync(join(m[1]!, 'manifest.json'), 'utf8')) as Record<string, string[]>
    for (const name of manifest[m[2]!] ?? []) names.add(name)
  }
  return names
}

/** Extra node flags for the children started inside `fn` (the harness reads them at each spawn). */
async function withNodeArgs<T>(args: string, fn: () => Promise<T>): Promise<T> {
  const before = process.env['PORCHLIGHT_E2E_NODE_ARGS']
  process.env['PORCHLIGHT_E2E_NODE_ARGS'] = args
  try {
    return await fn()
  } finally {
    if (before === undefined) delete process.env['PORCHLIGHT_E2E_NODE_ARGS']
    else process.env['PORCHLIGHT_E2E_NODE_ARGS'] = before
  }
}

t.test('a serving relay loads neither ioredis nor fastify until used, the agent neither undici nor node-forge', { timeout: 60_000 }, async (t) => {
  const origin = await startHttpOrigin(t)
  const dir = t.testdirName
  const relayFile = join(dir, 'relay-imports.txt')
  const agentFile = join(dir, 'agent-imports.txt')
  const { relay, agent } = await withNodeArgs(`--import=${RECORD_IMPORTS}`, async () => {
    const relay = await startRelay(t, { env: { RECORD_IMPORTS_FILE: relayFile } })
    const agent = await startAgent(t, relay, { tunnels: [{ http: 'app', to: origin.url }], env: { RECORD_IMPORTS_FILE: agentFile } })
    return { relay, agent }
  })
  t.ok(agent.urls.length >= 1, 'the agent published its tunnels')
  await sleep(SETTLE_MS)

  const relayIdle = packagesIn(relayFile)
  const agentIdle = packagesIn(agentFile)
  t.comment(`relay loaded: ${[...relayIdle].sort().join(' ')}; agent loaded: ${[...agentIdle].sort().join(' ')}`)
  // The recording works: both loaded their WebSocket library.
  t.ok(relayIdle.has('ws') && agentIdle.has('ws'), 'imports were recorded (ws in both)')
  t.notOk(relayIdle.has('ioredis'), 'relay without cluster: did not load ioredis')
  t.notOk(relayIdle.has('fastify'), 'relay with an admin listener nobody asked: did not load fastify')
  t.notOk(relayIdle.has('node-forge') || agentIdle.has('node-forge'), 'neither loaded node-forge')
  t.notOk(relayIdle.has('acme-client'), 'relay without acme: did not load acme-client')
  t.notOk(agentIdle.has('undici'), 'agent before any per-request exchange: did not load undici')

  // The admin listener answers its first request by loading fastify then.
  const res = await fetch(`${relay.adminUrl!}/healthz`)
  t.equal(res.status, 200, 'GET /healthz on the admin listener: 200')
  t.same(await res.json(), { ok: true })
  const unauthorized = await fetch(`${relay.adminUrl!}/api/agents`)
  t.equal(unauthorized.status, 401, 'GET /api/agents without the token: 401 (the API is fastify\'s)')
  t.ok(packagesIn(relayFile).has('fastify'), 'after the first admin request: fastify loaded')
  t.same(await relay.connectedAgents().then((a) => a.map((x) => x.name)), ['laptop'], 'the admin API lists the agent')
})

t.test('idle relay and agent: RSS bounded, no optimized code; load brings the optimizer back', { timeout: 90_000 }, async (t) => {
  const origin = await startHttpOrigin(t)
  const { relay, agent } = await withNodeArgs('--trace-opt', async () => {
    const relay = await startRelay(t)
    const agent = await startAgent(t, relay, { tunnels: [{ http: 'app', to: origin.url }] })
    return { relay, agent }
  })
  await sleep(SETTLE_MS)
  const idle = { relay: rssBytes(relay.pid), agent: rssBytes(agent.pid) }
  const optimized = (lines: readonly string[]): number => lines.filter((l) => OPTIMIZED.test(l)).length
  const idleOptimized = { relay: optimized(relay.current.stdoutLines), agent: optimized(agent.handle.stdoutLines) }
  t.comment(`idle RSS: relay ${(idle.relay / MiB).toFixed(1)} MiB, agent ${(idle.agent / MiB).toFixed(1)} MiB; functions optimized while starting: relay ${idleOptimized.relay}, agent ${idleOptimized.agent}`)
  t.ok(idle.relay > 0 && idle.relay <= RELAY_IDLE_LIMIT_MIB * MiB, `relay idle RSS ${(idle.relay / MiB).toFixed(1)} MiB <= ${RELAY_IDLE_LIMIT_MIB} MiB`)
  t.ok(idle.agent > 0 && idle.agent <= AGENT_IDLE_LIMIT_MIB * MiB, `agent idle RSS ${(idle.agent / MiB).toFixed(1)} MiB <= ${AGENT_IDLE_LIMIT_MIB} MiB`)
  t.equal(idleOptimized.relay, 0, 'relay: nothing optimized while starting and idle')
  t.equal(idleOptimized.agent, 0, 'agent: nothing optimized while starting and idle')

  // Requests until both processes optimize their hot code again (bounded in time).
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 8 })
  t.teardown(() => keepAlive.destroy())
  const deadline = Date.now() + 30_000
  let requests = 0
  let failed = 0
  while (Date.now() < deadline && (optimized(relay.current.stdoutLines) === 0 || optimized(agent.handle.stdoutLines) === 0)) {
    const batch = await Promise.all(Array.from({ length: 8 }, () => visit(relay.publicPort, { host: 'app.localhost', path: '/', agent: keepAlive })))
    requests += batch.length
    failed += batch.filter((r) => r.status !== 200).length
  }
  const loaded = { relay: optimized(relay.current.stdoutLines), agent: optimized(agent.handle.stdoutLines) }
  t.comment(`after ${requests} requests: relay optimized ${loaded.relay} functions, agent ${loaded.agent}`)
  t.equal(failed, 0, 'every request answered 200')
  t.ok(loaded.relay > 0, 'relay: load brought the optimizing compiler back')
  t.ok(loaded.agent > 0, 'agent: load brought the optimizing compiler back')
})
