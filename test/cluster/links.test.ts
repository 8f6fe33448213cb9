import t from 'tap'
import { RawAgent } from '../e2e/harness/raw-agent.js'
import { failures, misrouted, startCluster, startClusterAgent, startEchoOrigin, startRedis, visit, waitForLinks } from './harness.js'

// Done-when 1: every agent holds a link to every relay within 3 s of its start; a link carries the
// instance id, a second link of one instance to a relay is refused, a reconnect replaces its link.
const AGENTS = ['one', 'two']

t.test('two agents link to all three relays within 3 s; each relay serves both over its own link', async (t) => {
  const redis = await startRedis(t)
  const relays = await startCluster(t, { redis, agents: AGENTS })
  for (const r of relays) t.equal(await r.readyz(), 200, `${r.id} /readyz on the peer listener`)
  const admin = await fetch(`${relays[0]!.adminUrl}/readyz`)
  t.equal(admin.status, 200, '/readyz on the admin listener too')

  const origins = await Promise.all(AGENTS.map((a) => startEchoOrigin(t, a)))
  const agents = await Promise.all(AGENTS.map((a, i) => startClusterAgent(t, relays, a, origins[i]!)))
  const links = await waitForLinks(relays, AGENTS, 10_000)
  const linkedAt = Date.now()
  t.ok(links.ok, `every relay holds one link of each agent (counts ${links.counts.join(',')})`)
  // "Start" is the agent's first log line (its process running), not the spawn: node's own
  // start-up on a loaded CI machine is not the agent's doing.
  for (const agent of agents) {
    const first = agent.logs()[0] ?? {}
    t.ok(linkedAt - Number(first['time']) <= 3_000, `all 3 links within 3 s of the agent's start ("${String(first['msg'])}"; took at most ${linkedAt - Number(first['time'])} ms)`)
    t.equal(agent.urls.length, 1, 'one Forwarding line: every member gives the same URL')
  }

  // Each relay serves each host itself: no misroute, no failure, on all of them.
  const outcomes = await Promise.all(relays.flatMap((r) => AGENTS.flatMap((a) => [1, 2, 3].map(() => visit(r.ports.public, `${a}.localhost`, 5000, r.ip)))))
  t.equal(outcomes.length, 18)
  t.same(failures(outcomes), [], 'every request answered by its origin')
  t.same(misrouted(outcomes, (h) => h.split('.')[0]!), [], 'misrouted = 0')
  t.same(outcomes.map((o) => o.served?.agent).sort(), [...Array(9).fill('one'), ...Array(9).fill('two')])
})

t.test('one link per instance and relay: a second is refused (409), a reconnect of the same link replaces it at once', async (t) => {
  const redis = await startRedis(t)
  const relays = await startCluster(t, { redis, agents: ['one'], count: 2 })
  const token = relays[0]!.proc.tokens['one']!
  const first = await RawAgent.connect(t, relays[0]!.agentsUrl, token, { 'x-porchlight-instance': 'inst1', 'x-porchlight-link': 'linkA' })
  await first.hello()
  // The relay names itself and every member after the welcome.
  const notice = await first.next((m) => m['type'] === 'notice' && m['code'] === 'PL_NOTICE_CLUSTER_MEMBERS')
  t.equal(notice['message'], `self=r1 r1=${relays[0]!.agentsUrl} r2=${relays[1]!.agentsUrl}`)

  const second = await RawAgent.connect(t, relays[0]!.agentsUrl, token, { 'x-porchlight-instance': 'inst1', 'x-porchlight-link': 'linkB' }).then(() => 'opened', (err: Error) => err.message)
  t.equal(second, 'upgrade refused: HTTP 409', 'a second link of the same instance is refused')
  const other = await RawAgent.connect(t, relays[0]!.agentsUrl, token, { 'x-porchlight-instance': 'inst2', 'x-porchlight-link': 'linkB' })
  await other.hello()
  t.pass('another instance of the same agent gets its own link')

  const before = Date.now()
  const again = await RawAgent.connect(t, relays[0]!.agentsUrl, token, { 'x-porchlight-instance': 'inst1', 'x-porchlight-link': 'linkA' })
  await again.hello()
  await first.next(() => false, 3000).catch(() => undefined)
  t.equal(first.closed, true, 'the stale link was closed')
  t.ok(Date.now() - before < 3000, 'replaced at once, without waiting for its heartbeat timeout')
  t.equal(await relays[0]!.linksOf('one'), 2, 'inst1 (replaced) and inst2')
})
