// Fault runs on the agent side (SECURITY.md F1, F2, F9): real relay and agent binaries, a load of
// visitor requests against identity origins while an agent is killed, drained or duplicated.
// Every request gets a verdict (test/faults/harness/load.ts); hung and misrouted must be 0, and
// the relay returns to its baseline of sessions, streams, fds and RSS.
import t, { type Test } from 'tap'
import { startAgent, startRelay, type AgentProcess, type RelayProcess } from '../e2e/harness/processes.js'
import { pollUntil } from '../e2e/harness/wait.js'
import { backToBaseline, examples, relayFigures, runLoad, sendOne, sleep, startIdentityOrigin, summary, tally, type IdentityOrigin, type Planned } from './harness/load.js'

const RSS_SLACK_MB = 60

async function serves(relay: RelayProcess, p: Planned, identities: string[]): Promise<boolean> {
  const r = await pollUntil(() => sendOne(relay.publicPort, p, 3000, identities), o => o.verdict === 'complete', { timeoutMs: 10_000, intervalMs: 100 })
  return r.ok
}

async function twoSites(t: Test): Promise<{ relay: RelayProcess; a: IdentityOrigin; b: IdentityOrigin; alpha: AgentProcess; beta: AgentProcess; identities: string[] }> {
  const relay = await startRelay(t, { agents: { alpha: { hosts: ['a.localhost'] }, beta: { hosts: ['b.localhost'] } } })
  const a = await startIdentityOrigin(t, 'site-a')
  const b = await startIdentityOrigin(t, 'site-b')
  const alpha = await startAgent(t, relay, { name: 'alpha', tunnels: [{ http: 'a', to: a.url }] })
  const beta = await startAgent(t, relay, { name: 'beta', tunnels: [{ http: 'b', to: b.url }] })
  return { relay, a, b, alpha, beta, identities: ['site-a', 'site-b'] }
}

t.test('F1: agent SIGKILL mid-response', async t => {
  const { relay, a, alpha, identities } = await twoSites(t)
  const warm: Planned = { host: 'a.localhost', identity: 'site-a', path: '/data/1000' }
  t.ok(await serves(relay, warm, identities), 'site a serves before the fault')
  const base = await relayFigures(relay)
  const plan: Planned[] = Array.from({ length: 320 }, (_, i) => i % 2 === 0
    ? { host: 'a.localhost', identity: 'site-a', path: i % 4 === 0 ? '/data/400000?pace=600' : '/chunked/400000?pace=600' }
    : { host: 'b.localhost', identity: 'site-b', path: '/data/200000?pace=300' })
  const started = Date.now()
  const load = runLoad({ port: relay.publicPort, plan, concurrency: 40, timeoutMs: 10_000, spacingMs: 15, identities })
  // Kill once a good number of site-a responses are under way.
  await pollUntil(async () => a.hits, n => n >= 40, { timeoutMs: 10_000, intervalMs: 20 })
  await alpha.kill('SIGKILL')
  const killedAt = Date.now()
  const outcomes = await load
  const ms = Date.now() - started
  t.comment(summary('agent-sigkill', outcomes, ms))
  const c = tally(outcomes)
  t.equal(c.hung, 0, `hung 0 ${examples(outcomes, ['hung'])}`)
  t.equal(c.misrouted, 0, `misrouted 0 ${examples(outcomes, ['misrouted'])}`)
  t.equal(c.other + c.reset + c.refused, 0, `nothing unlabelled ${examples(outcomes, ['other', 'reset', 'refused'])}`)
  t.ok(c.truncated > 0, `responses cut by the kill are visibly truncated (${c.truncated})`)
  const bSide = outcomes.filter(o => o.planned.host === 'b.localhost')
  t.ok(bSide.every(o => o.verdict === 'complete'), `the other agent's site served every request (${bSide.filter(o => o.verdict === 'complete').length}/${bSide.length})`)
  const late = outcomes.filter(o => o.planned.host === 'a.localhost' && o.startedAt > killedAt + 1000)
  t.ok(late.every(o => o.verdict === 'labelled'), `the load's requests to the dead agent's site 1 s after the kill are labelled 503 (${late.length})`)
  // On a slow machine the load may have issued all of them before that: a few more, on their own.
  await sleep(Math.max(0, killedAt + 1000 - Date.now()))
  const sentLate = await Promise.all(Array.from({ length: 5 }, () => sendOne(relay.publicPort, { host: 'a.localhost', identity: 'site-a', path: '/data/1000' }, 3000, identities)))
  t.same(sentLate.map(o => o.verdict), Array(5).fill('labelled'), `requests sent 1 s after the kill are labelled (${sentLate.map(o => o.status).join(', ')})`)

  await startAgent(t, relay, { name: 'alpha', tunnels: [{ http: 'a', to: a.url }] })
  t.ok(await serves(relay, warm, identities), 'a restarted agent serves site a again')
  const after = await backToBaseline(relay, base)
  t.ok(after.ok, `relay back to baseline in ${after.ms} ms: ${JSON.stringify(after.now)} vs ${JSON.stringify(base)}`)
  t.ok(after.now.rssMb <= base.rssMb + RSS_SLACK_MB, `relay RSS ${after.now.rssMb} MB within ${RSS_SLACK_MB} MB of ${base.rssMb} MB`)
})

t.test('F2: agent SIGTERM drains in-flight requests while new ones keep arriving', async t => {
  const { relay, a, alpha, identities } = await twoSites(t)
  const warm: Planned = { host: 'a.localhost', identity: 'site-a', path: '/data/1000' }
  t.ok(await serves(relay, warm, identities), 'site a serves before the fault')
  const base = await relayFigures(relay)
  // 20 slow requests in flight (about 2 s each), then a stream of short ones during the drain.
  const inflight: Planned[] = Array.from({ length: 20 }, () => ({ host: 'a.localhost', identity: 'site-a', path: '/data/100000?pace=2000' }))
  const started = Date.now()
  const first = runLoad({ port: relay.publicPort, plan: inflight, concurrency: 20, timeoutMs: 10_000, identities })
  await pollUntil(async () => a.hits, n => n >= 21, { timeoutMs: 5000, intervalMs: 20 })
  // The harness's kill() follows with SIGKILL after 2 s; the drain may take longer on a busy machine.
  const stopping = alpha.handle.kill('SIGTERM', 15_000)
  const termAt = Date.now()
  const during = runLoad({ port: relay.publicPort, plan: Array.from({ length: 120 }, (_, i) => i % 3 === 0 ? { host: 'b.localhost', identity: 'site-b', path: '/data/2000' } : { host: 'a.localhost', identity: 'site-a', path: '/data/2000' }), concurrency: 6, timeoutMs: 10_000, spacingMs: 20, identities })
  const code = await stopping
  const exitMs = Date.now() - termAt
  const outcomes = [...await first, ...await during]
  t.comment(summary('agent-sigterm', outcomes, Date.now() - started))
  const c = tally(outcomes)
  t.equal(c.hung, 0, `hung 0 ${examples(outcomes, ['hung'])}`)
  t.equal(c.misrouted, 0, 'misrouted 0')
  t.equal(code, 0, `the agent exits 0 after draining (${exitMs} ms)`)
  const drained = (await first)
  t.equal(drained.filter(o => o.verdict === 'complete').length, 20, `all 20 in-flight requests complete through the drain ${examples(drained, ['truncated', 'labelled', 'reset', 'other'])}`)
  t.equal(c.truncated + c.reset + c.other + c.refused, 0, `new requests during the drain are served or labelled ${examples(outcomes, ['truncated', 'reset', 'other', 'refused'])}`)
  await startAgent(t, relay, { name: 'alpha', tunnels: [{ http: 'a', to: a.url }] })
  t.ok(await serves(relay, warm, identities), 'a restarted agent serves site a again')
  const after = await backToBaseline(relay, base)
  t.ok(after.ok, `relay back to baseline in ${after.ms} ms: ${JSON.stringify(after.now)} vs ${JSON.stringify(base)}`)
})

t.test('F9: duplicate identity (a second agent process with the same token) never hangs or misroutes', async t => {
  // Whatever the registry's policy (newest wins, reject the second, or both side by side), both
  // processes serve the same site from origins of the same identity; a body from site b's origin
  // on site a would be a misroute.
  const { relay, a, identities } = await twoSites(t)
  const a2 = await startIdentityOrigin(t, 'site-a')
  const started = Date.now()
  const plan: Planned[] = Array.from({ length: 300 }, (_, i) => i % 3 === 0
    ? { host: 'b.localhost', identity: 'site-b', path: '/data/20000' }
    : { host: 'a.localhost', identity: 'site-a', path: i % 2 === 0 ? '/data/50000?pace=200' : '/chunked/30000' })
  const load = runLoad({ port: relay.publicPort, plan, concurrency: 20, timeoutMs: 10_000, spacingMs: 5, identities })
  await sleep(300)
  const twin = await startAgent(t, relay, { name: 'alpha', tunnels: [{ http: 'a', to: a2.url }], forwarding: 0, waitFor: /Forwarding|PL_ERR_/ }).catch((err: Error) => err)
  const outcomes = await load
  t.comment(summary('duplicate-identity', outcomes, Date.now() - started))
  const c = tally(outcomes)
  t.equal(c.hung, 0, `hung 0 ${examples(outcomes, ['hung'])}`)
  t.equal(c.misrouted, 0, `misrouted 0 ${examples(outcomes, ['misrouted'])}`)
  t.equal(c.other + c.refused, 0, `nothing unexpected ${examples(outcomes, ['other', 'refused'])}`)
  t.ok(outcomes.filter(o => o.planned.host === 'b.localhost').every(o => o.verdict === 'complete'), 'site b (another identity) served every request')
  const said = twin instanceof Error ? twin.message.split('\n')[0] : `running=${String(twin.handle.running)} forwarding=${twin.forwarding.length} ${(twin.stdout() + twin.stderr()).match(/PL_ERR_[A-Z_]+/)?.[0] ?? ''}`
  t.comment(`second process: ${said}; requests served by the first process's origin ${a.hits}, by the second's ${a2.hits}`)
  t.ok(await serves(relay, { host: 'a.localhost', identity: 'site-a', path: '/data/1000' }, identities), 'site a still serves')
  t.ok(await serves(relay, { host: 'b.localhost', identity: 'site-b', path: '/data/1000' }, identities), 'site b still serves')
})
