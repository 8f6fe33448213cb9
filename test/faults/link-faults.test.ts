// Fault runs on the agent-relay link (SECURITY.md F5, F8): the path goes silent (no FIN, no RST)
// through test/e2e/harness/partition.ts, once with requests already in flight and once with
// requests arriving after the cut. Every request ends within the relay's heartbeat bound as a
// labelled error (or a visibly truncated response); after the path heals the agent serves again
// and the relay is back to its baseline.
import t, { type Test } from 'tap'
import { startLinkProxy } from '../e2e/harness/partition.js'
import { startAgent, startRelay } from '../e2e/harness/processes.js'
import { pollUntil } from '../e2e/harness/wait.js'
import { backToBaseline, examples, relayFigures, runLoad, sendOne, sleep, startIdentityOrigin, summary, tally, type Planned } from './harness/load.js'

/** Relay heartbeat in these runs: 500 ms pings, 1.5 s of silence ends the session. */
const HEARTBEAT = { interval_ms: 500, timeout_ms: 1500 }
const DEAD_WITHIN_MS = HEARTBEAT.interval_ms + HEARTBEAT.timeout_ms + 1500

async function setup(t: Test) {
  const relay = await startRelay(t, { heartbeat: HEARTBEAT, agents: { alpha: { hosts: ['a.localhost'] }, beta: { hosts: ['b.localhost'] } } })
  const a = await startIdentityOrigin(t, 'site-a')
  const b = await startIdentityOrigin(t, 'site-b')
  const proxy = await startLinkProxy(t, relay.agentsPort)
  await startAgent(t, relay, { name: 'alpha', tunnels: [{ http: 'a', to: a.url }], extra: { relay: `ws://127.0.0.1:${proxy.port}` } })
  await startAgent(t, relay, { name: 'beta', tunnels: [{ http: 'b', to: b.url }] })
  const identities = ['site-a', 'site-b']
  const warm: Planned = { host: 'a.localhost', identity: 'site-a', path: '/data/1000' }
  const first = await pollUntil(() => sendOne(relay.publicPort, warm, 3000, identities), o => o.verdict === 'complete', { timeoutMs: 5000, intervalMs: 100 })
  return { relay, a, b, proxy, identities, warm, firstOk: first.ok }
}

async function healAndCheck(t: Test, s: Awaited<ReturnType<typeof setup>>, base: Awaited<ReturnType<typeof relayFigures>>): Promise<void> {
  s.proxy.heal()
  const healed = Date.now()
  const back = await pollUntil(() => sendOne(s.relay.publicPort, s.warm, 3000, s.identities), o => o.verdict === 'complete', { timeoutMs: 40_000, intervalMs: 250 })
  t.ok(back.ok, `site a serves again ${Date.now() - healed} ms after the path healed`)
  const after = await backToBaseline(s.relay, base)
  t.ok(after.ok, `relay back to baseline in ${after.ms} ms: ${JSON.stringify(after.now)} vs ${JSON.stringify(base)}`)
}

t.test('F8: partition with requests in flight', async t => {
  const s = await setup(t)
  t.ok(s.firstOk, 'site a serves through the link proxy before the partition')
  const base = await relayFigures(s.relay)
  const plan: Planned[] = Array.from({ length: 120 }, (_, i) => i % 4 === 3
    ? { host: 'b.localhost', identity: 'site-b', path: '/data/20000' }
    : { host: 'a.localhost', identity: 'site-a', path: i % 2 === 0 ? '/data/200000?pace=3000' : '/hang' })
  const started = Date.now()
  const load = runLoad({ port: s.relay.publicPort, plan, concurrency: 60, timeoutMs: DEAD_WITHIN_MS, identities: s.identities })
  await pollUntil(async () => s.a.hits, n => n >= 40, { timeoutMs: 5000, intervalMs: 20 })
  const cutAt = Date.now()
  s.proxy.blackhole()
  const outcomes = await load
  t.comment(summary('partition-in-flight', outcomes, Date.now() - started))
  const c = tally(outcomes)
  t.equal(c.hung, 0, `hung 0 (bound ${DEAD_WITHIN_MS} ms + margin) ${examples(outcomes, ['hung'])}`)
  t.equal(c.misrouted, 0, 'misrouted 0')
  t.equal(c.other + c.reset + c.refused, 0, `every request ends labelled, truncated or complete ${examples(outcomes, ['other', 'reset', 'refused'])}`)
  const slowest = Math.max(...outcomes.filter(o => o.planned.host === 'a.localhost').map(o => o.startedAt + o.ms - cutAt))
  t.ok(slowest <= DEAD_WITHIN_MS + 1000, `the last site-a request ended ${slowest} ms into the partition`)
  t.ok(outcomes.filter(o => o.planned.host === 'b.localhost').every(o => o.verdict === 'complete'), 'the other agent served every request')
  await healAndCheck(t, s, base)
})

t.test('F5: half-open link, requests arriving after the cut', async t => {
  const s = await setup(t)
  t.ok(s.firstOk, 'site a serves before the link goes silent')
  const base = await relayFigures(s.relay)
  s.proxy.blackhole()
  const cutAt = Date.now()
  const started = Date.now()
  const plan: Planned[] = Array.from({ length: 150 }, (_, i) => i % 3 === 2 ? { host: 'b.localhost', identity: 'site-b', path: '/data/5000' } : { host: 'a.localhost', identity: 'site-a', path: '/data/5000' })
  // Half the load right after the cut (held until the relay calls the session dead), half once it has.
  const early = runLoad({ port: s.relay.publicPort, plan: plan.slice(0, 75), concurrency: 8, timeoutMs: DEAD_WITHIN_MS, spacingMs: 30, identities: s.identities })
  await sleep(DEAD_WITHIN_MS + 200)
  const late = runLoad({ port: s.relay.publicPort, plan: plan.slice(75), concurrency: 8, timeoutMs: DEAD_WITHIN_MS, spacingMs: 30, identities: s.identities })
  const outcomes = [...await early, ...await late]
  t.comment(summary('half-open-link', outcomes, Date.now() - started))
  const c = tally(outcomes)
  t.equal(c.hung, 0, `hung 0 ${examples(outcomes, ['hung'])}`)
  t.equal(c.misrouted, 0, 'misrouted 0')
  t.equal(c.other + c.reset + c.refused + c.truncated, 0, `site a labelled, site b complete ${examples(outcomes, ['other', 'reset', 'refused', 'truncated'])}`)
  const lateA = outcomes.filter(o => o.planned.host === 'a.localhost' && o.startedAt > cutAt + DEAD_WITHIN_MS)
  t.ok(lateA.length > 0 && lateA.every(o => o.verdict === 'labelled' && o.ms < 500), `once the relay called the session dead, site a answers 503 at once (${lateA.length})`)
  await healAndCheck(t, s, base)
})
