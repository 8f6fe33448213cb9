import t from 'tap'
import { failures, misrouted, startCluster, startClusterAgent, startEchoOrigin, startHaproxy, startLoad, startRedis, waitForLinks } from './harness.js'

// Done-when 4: the agents' links to one relay are blackholed (no FIN, no RST; the heartbeat has
// not timed out yet). A stream open not answered within 1 s makes the link suspect: that relay
// forwards to a peer with a healthy link, so no request started 3 s or more later fails.
const AGENTS = ['one', 'two']
const HOSTS = AGENTS.map((a) => `${a}.localhost`)

t.test('blackholed agent links to one relay: no failure among requests started 3 s later', async (t) => {
  const redis = await startRedis(t)
  const relays = await startCluster(t, { redis, agents: AGENTS, agentsHops: [1] })
  const origins = await Promise.all(AGENTS.map((a) => startEchoOrigin(t, a)))
  await Promise.all(AGENTS.map((a, i) => startClusterAgent(t, relays, a, origins[i]!)))
  t.ok((await waitForLinks(relays, AGENTS, 10_000)).ok, 'every agent linked to every relay')
  const haproxy = await startHaproxy(t, relays)
  // Peers learn who serves what from heartbeats: let one round pass.
  await new Promise((r) => setTimeout(r, 2_500))

  const load = startLoad(haproxy.port, HOSTS, 50)
  await new Promise((r) => setTimeout(r, 1_000))
  relays[1]!.agentsHop!.set('blackhole')
  const cutAt = Date.now()
  await new Promise((r) => setTimeout(r, 7_000))
  const outcomes = await load.stop()
  const late = outcomes.filter((o) => o.startedAt >= cutAt + 3_000)
  t.ok(late.length >= 100, `${late.length} requests started 3 s or more after the blackhole (${outcomes.length} in all, ${failures(outcomes).length} failed)`)
  t.same(failures(late).map((o) => `${o.host} ${o.status} ${o.error ?? ''}`), [], 'none of them failed')
  t.same(misrouted(outcomes, (h) => h.split('.')[0]!), [], 'misrouted = 0')
  t.equal(await relays[1]!.readyz(), 200, 'the relay itself stays ready (its Redis is fine)')
})
