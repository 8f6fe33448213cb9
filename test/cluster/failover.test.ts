import t from 'tap'
import type { Scope } from '../e2e/harness/scope.js'
import { failures, misrouted, runLoad, startCluster, startClusterAgent, startEchoOrigin, startHaproxy, startRedis, waitForLinks, type Outcome } from './harness.js'

// Done-when 2 and 3: a relay killed or frozen under load behind HAProxy; the other members serve
// every host over their own links. Every response is checked: misrouted = 0 throughout.
const AGENTS = ['one', 'two']
const HOSTS = AGENTS.map((a) => `${a}.localhost`)
const agentOf = (host: string): string => host.split('.')[0]!

async function cluster(t: Scope) {
  const redis = await startRedis(t)
  const relays = await startCluster(t, { redis, agents: AGENTS })
  const origins = await Promise.all(AGENTS.map((a) => startEchoOrigin(t, a)))
  await Promise.all(AGENTS.map((a, i) => startClusterAgent(t, relays, a, origins[i]!)))
  const linked = (await waitForLinks(relays, AGENTS, 10_000)).ok
  const haproxy = await startHaproxy(t, relays)
  return { relays, haproxy, linked }
}

function summary(outcomes: Outcome[]): string {
  const bad = failures(outcomes).slice(0, 5).map((o) => `${o.status} ${o.error ?? ''} at +${o.startedAt}`)
  return `${outcomes.length} requests, ${failures(outcomes).length} failed ${JSON.stringify(bad)}`
}

t.test('SIGKILL a relay under 100 req/s of fresh connections: only requests in flight on it may fail', async (t) => {
  const { relays, haproxy, linked } = await cluster(t)
  t.ok(linked, 'every agent linked to every relay')
  const victim = relays[1]!
  let killedAt = 0
  const load = runLoad(haproxy.port, HOSTS, 100, 6_000)
  setTimeout(() => { killedAt = Date.now(); victim.signal('SIGKILL') }, 2_000)
  const outcomes = await load
  const inFlight = outcomes.filter((o) => o.startedAt < killedAt && o.endedAt >= killedAt)
  const before = failures(outcomes.filter((o) => o.startedAt < killedAt))
  const late = failures(outcomes.filter((o) => o.startedAt >= killedAt + 1_000))
  t.ok(outcomes.length >= 300, summary(outcomes))
  t.ok(before.length <= inFlight.length, `failures before the kill (${before.length}) <= requests in flight at the kill (${inFlight.length})`)
  t.same(late, [], 'no failure among requests started 1 s or more after the kill')
  t.same(misrouted(outcomes, agentOf), [], 'misrouted = 0')
  t.ok(outcomes.filter((o) => o.startedAt >= killedAt + 1_000).length >= 150, 'the survivors carried the rest')
})

t.test('SIGSTOP a relay: no failure 2 s later; after SIGCONT it is ready again within 3 s', async (t) => {
  const { relays, haproxy, linked } = await cluster(t)
  t.ok(linked, 'every agent linked to every relay')
  const victim = relays[2]!
  let stoppedAt = 0
  const load = runLoad(haproxy.port, HOSTS, 50, 7_000)
  setTimeout(() => { stoppedAt = Date.now(); victim.signal('SIGSTOP') }, 1_000)
  const outcomes = await load
  t.ok(outcomes.length >= 200, summary(outcomes))
  t.same(failures(outcomes.filter((o) => o.startedAt >= stoppedAt + 2_000)), [], 'no failure among requests started 2 s or more after the stop')
  t.same(misrouted(outcomes, agentOf), [], 'misrouted = 0')

  const contAt = Date.now()
  victim.signal('SIGCONT')
  let ready = 0
  while (Date.now() - contAt < 5_000 && (ready = await victim.readyz()) !== 200) await new Promise((r) => setTimeout(r, 50))
  const backMs = Date.now() - contAt
  t.equal(ready, 200, 'ready again')
  t.ok(backMs <= 3_000, `back within 3 s of SIGCONT (${backMs} ms)`)
  const after = await runLoad(haproxy.port, HOSTS, 50, 2_000)
  t.same(failures(after), [], `after SIGCONT every request succeeds (${after.length})`)
  t.same(misrouted(after, agentOf), [], 'misrouted = 0 after SIGCONT')
})
