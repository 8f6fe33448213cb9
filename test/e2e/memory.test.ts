// Bounded memory: a 1 GB download through the tunnel, with a visitor that stalls for a while, must
// not make the relay or the agent buffer it.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { PatternVerifier } from './harness/pattern.js'
import { startAgent, startRelay } from './harness/processes.js'
import { visitStream } from './harness/visitor.js'

const GB = 1024 * 1024 * 1024
/**
 * The issue asks for "~150 MB"; measured peaks are 121-148 MB (idle 80-92 MB). 160 MB leaves
 * room for GC timing on a loaded CI machine and still fails if a stream buffers its data.
 */
const RSS_LIMIT_MB = 160
const RSS_LIMIT_BYTES = RSS_LIMIT_MB * 1024 * 1024
const SAMPLE_EVERY_MS = 200
/** How long the visitor stops reading mid-transfer, so buffering anywhere would show up. */
const STALL_MS = 3000

/** VmRSS of a process in bytes, or null once it is gone. */
function rssBytes(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m && m[1] !== undefined ? Number(m[1]) * 1024 : null
  } catch {
    return null
  }
}

// SECURITY E3: slow-reader download, RSS bounded by the stream windows.
t.test('1 GB download with a stalled reader stays under 160 MB RSS per process', { timeout: 300_000 }, async t => {
  const origin = await startHttpOrigin(t)
  const relay = await startRelay(t)
  const agent = await startAgent(t, relay, { tunnels: [{ http: 'big', to: origin.url }] })
  // Idle RSS before the transfer, so the comment shows how much the transfer itself added.
  const idle = { relay: rssBytes(relay.pid) ?? 0, agent: rssBytes(agent.pid) ?? 0 }
  const peak = { relay: 0, agent: 0 }
  let samples = 0
  const sampler = setInterval(() => {
    samples++
    peak.relay = Math.max(peak.relay, rssBytes(relay.pid) ?? 0)
    peak.agent = Math.max(peak.agent, rssBytes(agent.pid) ?? 0)
  }, SAMPLE_EVERY_MS)
  t.teardown(() => clearInterval(sampler))

  const started = Date.now()
  const res = await visitStream(relay.publicPort, { host: 'big.localhost', path: `/bytes/${GB}` })
  t.equal(res.statusCode, 200)
  const verifier = new PatternVerifier()
  let stalled = false
  for await (const chunk of res) {
    verifier.push(chunk as Buffer)
    if (!stalled && verifier.receivedBytes >= 64 * 1024 * 1024) {
      stalled = true
      // Not reading: the kernel buffers fill, then relay, mux and agent must all hold back.
      await new Promise(resolve => setTimeout(resolve, STALL_MS))
    }
  }
  const ms = Date.now() - started
  clearInterval(sampler)
  const mb = (n: number): string => (n / 1024 / 1024).toFixed(1)
  t.comment(`1 GiB in ${ms} ms (${(GB / 1024 / 1024 / (ms / 1000)).toFixed(1)} MiB/s incl. ${STALL_MS} ms stall); peak RSS relay ${mb(peak.relay)} MB (idle ${mb(idle.relay)}), agent ${mb(peak.agent)} MB (idle ${mb(idle.agent)}); ${samples} samples`)
  t.equal(verifier.receivedBytes, GB, 'every byte arrived')
  t.equal(verifier.firstMismatchAt, -1, 'bytes in order and intact')
  t.ok(samples >= 10, `sampled RSS ${samples} times`)
  t.ok(peak.relay > 0 && peak.relay < RSS_LIMIT_BYTES, `relay peak RSS ${mb(peak.relay)} MB < ${RSS_LIMIT_MB} MB`)
  t.ok(peak.agent > 0 && peak.agent < RSS_LIMIT_BYTES, `agent peak RSS ${mb(peak.agent)} MB < ${RSS_LIMIT_MB} MB`)
})
