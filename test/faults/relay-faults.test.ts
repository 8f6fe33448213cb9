// Fault runs on the relay side (SECURITY.md F3, F4): the relay is SIGKILLed with 20 agent
// processes connected and a load running, then restarted on the same ports; then it stays down for
// several backoff caps. Requests while it is down are refused (never accepted); requests it had
// accepted end truncated or reset (the process died); none hangs or is misrouted, and every agent
// is back within the backoff cap plus a handshake.
import t from 'tap'
import { startAgent, startRelay, type AgentProcess } from '../e2e/harness/processes.js'
import { pollUntil } from '../e2e/harness/wait.js'
import { backToBaseline, examples, fdCount, relayFigures, rssMb, runLoad, sendOne, sleep, startIdentityOrigin, summary, tally, type Planned } from './harness/load.js'

/** The agents' backoff cap in the e2e harness (childEnv sets PORCHLIGHT_BACKOFF_MAX_MS). */
const BACKOFF_MAX_MS = 2000
const AGENTS = 20
/** A restarted relay knows a host only once its agent re-published: until then 404 unknown host (labelled). */
const RESTART_LABELLED = [404, 502, 503, 504]

t.test(`relay restart with ${AGENTS} agents connected, then a long outage`, async t => {
  const names = Array.from({ length: AGENTS }, (_, i) => `agent${i}`)
  const relay = await startRelay(t, { agents: Object.fromEntries(names.map(n => [n, { hosts: [`${n}.localhost`] }])) })
  const origins = await Promise.all(names.map(n => startIdentityOrigin(t, `site-${n}`)))
  const identities = origins.map(o => o.identity)
  const agents: AgentProcess[] = []
  const bootStarted = Date.now()
  for (let i = 0; i < AGENTS; i += 5) {
    agents.push(...await Promise.all(names.slice(i, i + 5).map((n, j) => startAgent(t, relay, { name: n, tunnels: [{ http: n, to: origins[i + j]!.url }] }))))
  }
  t.comment(`${AGENTS} agent processes up in ${Date.now() - bootStarted} ms`)
  const site = (i: number, path: string): Planned => ({ host: `${names[i]}.localhost`, identity: identities[i]!, path })
  const all = await Promise.all(names.map((_, i) => pollUntil(() => sendOne(relay.publicPort, site(i, '/data/1000'), 3000, identities), o => o.verdict === 'complete', { timeoutMs: 10_000, intervalMs: 100 })))
  t.ok(all.every(o => o.ok), 'every site serves before the fault')
  const base = await relayFigures(relay)
  const agentFds = agents.map(a => fdCount(a.pid))
  const agentRss = agents.map(a => rssMb(a.pid))

  const allBack = async (what: string, since: number): Promise<void> => {
    const back = await pollUntil(() => relay.connectedAgents().catch(() => []), list => list.length === AGENTS, { timeoutMs: BACKOFF_MAX_MS + 5000, intervalMs: 100 })
    t.equal(back.value.length, AGENTS, `${what}: all ${AGENTS} agents reconnected ${Date.now() - since} ms after the relay came back (cap ${BACKOFF_MAX_MS} ms + handshake)`)
    const served = await Promise.all(names.map((_, i) => pollUntil(() => sendOne(relay.publicPort, site(i, '/data/1000'), 3000, identities), o => o.verdict === 'complete', { timeoutMs: 5000, intervalMs: 100 })))
    t.ok(served.every(s => s.ok), `${what}: every site serves again`)
    t.ok(agents.every(a => a.handle.running), `${what}: no agent process gave up`)
  }

  await t.test('F3: relay SIGKILL under load, restarted after 3 s', async t => {
    const plan = Array.from({ length: 600 }, (_, i) => site(i % AGENTS, i % 2 === 0 ? '/data/100000?pace=400' : '/chunked/50000?pace=200'))
    const started = Date.now()
    const load = runLoad({ port: relay.publicPort, plan, concurrency: 20, timeoutMs: 8000, spacingMs: 20, refusedPauseMs: 400, identities, labelledStatuses: RESTART_LABELLED })
    await sleep(700)
    await relay.kill('SIGKILL')
    await sleep(3000)
    const restartAt = Date.now()
    await relay.restart()
    const outcomes = await load
    t.comment(summary('relay-restart-20-agents', outcomes, Date.now() - started))
    const c = tally(outcomes)
    t.equal(c.hung, 0, `hung 0 ${examples(outcomes, ['hung'])}`)
    t.equal(c.misrouted, 0, `misrouted 0 ${examples(outcomes, ['misrouted'])}`)
    t.equal(c.other, 0, `nothing unexplained ${examples(outcomes, ['other'])}`)
    t.ok(c.complete > 0 && c.labelled > 0, 'the load outlasts the outage: served before and after, labelled while agents reconnect')
    await allBack('after the restart', restartAt)
  })

  await t.test('F4: relay down for 5 backoff caps, agents keep retrying and come back within the cap', async t => {
    const plan = Array.from({ length: 400 }, (_, i) => site(i % AGENTS, '/data/20000'))
    const started = Date.now()
    await relay.kill('SIGKILL')
    const load = runLoad({ port: () => relay.publicPort, plan, concurrency: 10, timeoutMs: 5000, spacingMs: 50, refusedPauseMs: 600, identities, labelledStatuses: RESTART_LABELLED })
    await sleep(5 * BACKOFF_MAX_MS)
    const restartAt = Date.now()
    await relay.restart()
    const outcomes = await load
    t.comment(summary('relay-long-outage', outcomes, Date.now() - started))
    const c = tally(outcomes)
    t.equal(c.hung, 0, `hung 0 ${examples(outcomes, ['hung'])}`)
    t.equal(c.misrouted, 0, 'misrouted 0')
    t.equal(c.other + c.truncated + c.reset, 0, `down means refused, up means served or labelled ${examples(outcomes, ['other', 'truncated', 'reset'])}`)
    t.ok(c.complete > 0, 'the load outlasts the outage and is served once the agents are back')
    t.comment(`labelled while the agents re-published: ${c.labelled}`)
    await allBack('after the outage', restartAt)
    const after = await backToBaseline(relay, { ...base, fds: base.fds, rssMb: base.rssMb })
    t.ok(after.ok, `relay at baseline sessions/streams/fds: ${JSON.stringify(after.now)} vs ${JSON.stringify(base)}`)
    const fdsNow = agents.map(a => fdCount(a.pid))
    const rssNow = agents.map(a => rssMb(a.pid))
    t.ok(fdsNow.every((n, i) => n <= agentFds[i]! + 8), `agent fds back near baseline (max growth ${Math.max(...fdsNow.map((n, i) => n - agentFds[i]!))})`)
    t.ok(rssNow.every((n, i) => n <= agentRss[i]! + 40), `agent RSS within 40 MB of baseline (max growth ${Math.max(...rssNow.map((n, i) => n - agentRss[i]!))} MB)`)
  })
})
