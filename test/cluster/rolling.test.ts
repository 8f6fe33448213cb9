import t from 'tap'
import { pollUntil } from '../e2e/harness/wait.js'
import { failures, misrouted, runLoad, startCluster, startLoad, startClusterAgent, startEchoOrigin, startHaproxy, startRedis, waitForLinks } from './harness.js'

// Done-when 10: a rolling restart (SIGTERM: /readyz 503, drain, exit 0; start again) of every
// relay at 50 req/s fails nothing; Redis killed: config-owned sites keep serving, every relay stays ready.
const AGENTS = ['one', 'two']
const HOSTS = AGENTS.map((a) => `${a}.localhost`)
const agentOf = (host: string): string => host.split('.')[0]!

t.test('rolling SIGTERM of r1..r3 at 50 req/s: 0 failures; then Redis SIGKILL: sites unaffected, all ready', async (t) => {
  const redis = await startRedis(t)
  const relays = await startCluster(t, { redis, agents: AGENTS, drainDelayMs: 1_000 })
  const origins = await Promise.all(AGENTS.map((a) => startEchoOrigin(t, a)))
  await Promise.all(AGENTS.map((a, i) => startClusterAgent(t, relays, a, origins[i]!)))
  t.ok((await waitForLinks(relays, AGENTS, 10_000)).ok, 'every agent linked to every relay')
  const haproxy = await startHaproxy(t, relays)

  const load = startLoad(haproxy.port, HOSTS, 50)
  for (const relay of relays) {
    const signalled = Date.now()
    relay.signal('SIGTERM')
    const drained = await pollUntil(() => relay.readyz(), (s) => s === 503, { timeoutMs: 2_000, intervalMs: 20 })
    t.equal(drained.value, 503, `${relay.id}: /readyz 503 while draining`)
    t.equal(await relay.proc.exited, 0, `${relay.id}: exit 0 after ${Date.now() - signalled} ms`)
    await relay.restart()
    t.ok((await waitForLinks([relay], AGENTS, 10_000)).ok, `${relay.id}: both agents linked again`)
    t.equal((await pollUntil(() => relay.readyz(), (s) => s === 200, { timeoutMs: 5_000 })).value, 200, `${relay.id}: ready again`)
    // HAProxy checks every 200 ms: let it see the relay up before the next one goes.
    await new Promise((r) => setTimeout(r, 600))
  }
  const outcomes = await load.stop()
  t.ok(outcomes.length >= 300, `${outcomes.length} requests during the rolling restart`)
  t.same(failures(outcomes).map((o) => `${o.host} ${o.status} ${o.error ?? ''}`), [], '0 failures')
  t.same(misrouted(outcomes, agentOf), [], 'misrouted = 0')

  // Redis gone for all: nothing on the request path needs it; nobody is fresher, so all stay ready.
  await redis.handle.kill('SIGKILL')
  const during = await runLoad(haproxy.port, HOSTS, 50, 7_000)
  t.same(failures(during).map((o) => `${o.host} ${o.status} ${o.error ?? ''}`), [], `no failure in 7 s without Redis (${during.length} requests)`)
  t.same(misrouted(during, agentOf), [], 'misrouted = 0 without Redis')
  t.same(await Promise.all(relays.map((r) => r.readyz())), [200, 200, 200], 'past max_staleness every relay is still ready')
  t.ok(relays.every((r) => r.proc.logs().some((l) => l['code'] === 'PL_ERR_CLUSTER_REDIS')), 'each relay logged that Redis is unavailable')
})
