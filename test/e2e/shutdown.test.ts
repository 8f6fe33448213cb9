// SIGTERM drains: requests in flight finish, then the process exits 0 well inside the grace period.
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { startAgent, startRelay } from './harness/processes.js'
import { visit } from './harness/visitor.js'

const SLOW_MS = 1500

function slowOrigin(t: Parameters<typeof startHttpOrigin>[0]) {
  return startHttpOrigin(t, { '/slow-ok': (_req, res) => { setTimeout(() => res.end('finished'), SLOW_MS) } })
}

// SECURITY G1: relay drain (more of it in test/adversarial/lifecycle-faults.test.ts).
t.test('relay SIGTERM: the in-flight request completes, then the relay exits 0', async t => {
  const origin = await slowOrigin(t)
  const relay = await startRelay(t)
  await startAgent(t, relay, { tunnels: [{ http: 'drain', to: origin.url }] })
  const inFlight = visit(relay.publicPort, { host: 'drain.localhost', path: '/slow-ok', timeoutMs: 10_000 })
  await new Promise(r => setTimeout(r, 300))
  const signalled = Date.now()
  process.kill(relay.pid, 'SIGTERM')
  const res = await inFlight
  t.equal(res.status, 200)
  t.equal(res.text, 'finished')
  t.equal(await relay.exited, 0, 'exit code 0')
  const tookMs = Date.now() - signalled
  t.ok(tookMs < SLOW_MS + 3000, `relay exited ${tookMs} ms after SIGTERM (grace 10 s)`)
})

// SECURITY G3: no in-flight work: exit in under 1.5 s.
t.test('relay SIGTERM with nothing in flight exits within 1.5 s', async t => {
  const relay = await startRelay(t)
  const signalled = Date.now()
  process.kill(relay.pid, 'SIGTERM')
  t.equal(await relay.exited, 0)
  t.ok(Date.now() - signalled < 1500, `exited after ${Date.now() - signalled} ms`)
})

t.test('agent SIGTERM: the in-flight request completes, then the agent exits 0', async t => {
  const origin = await slowOrigin(t)
  const relay = await startRelay(t)
  const agent = await startAgent(t, relay, { tunnels: [{ http: 'leaving', to: origin.url }] })
  const inFlight = visit(relay.publicPort, { host: 'leaving.localhost', path: '/slow-ok', timeoutMs: 10_000 })
  await new Promise(r => setTimeout(r, 300))
  process.kill(agent.pid, 'SIGTERM')
  const res = await inFlight
  t.equal(res.status, 200)
  t.equal(res.text, 'finished')
  t.equal(await agent.exited, 0, 'exit code 0')
  const after = await visit(relay.publicPort, { host: 'leaving.localhost', path: '/slow-ok', timeoutMs: 5000 })
  t.equal(after.status, 503, 'offline once the agent is gone')
})

// SECURITY G4: a second signal exits at once.
t.test('a second signal during the drain exits at once with a non-zero code (agent 143, relay 1)', async t => {
  const origin = await startHttpOrigin(t, { '/forever': (req) => { req.resume() } })
  const relay = await startRelay(t)
  // A request that never finishes keeps a drain going for its whole 10 s grace.
  const hang = (): void => { void visit(relay.publicPort, { host: 'stuck.localhost', path: '/forever', timeoutMs: 15_000 }).catch(() => null) }

  const agent = await startAgent(t, relay, { tunnels: [{ http: 'stuck', to: origin.url }] })
  hang()
  await new Promise(r => setTimeout(r, 300))
  process.kill(agent.pid, 'SIGTERM')
  await agent.waitForLine(/"msg":"stopping"/, 2000, 'stopping line')
  const agentSecond = Date.now()
  process.kill(agent.pid, 'SIGTERM')
  t.equal(await agent.exited, 143, 'agent: exit 143 after the second SIGTERM')
  t.ok(Date.now() - agentSecond < 1000, `agent gone ${Date.now() - agentSecond} ms after the second signal`)

  await startAgent(t, relay, { tunnels: [{ http: 'stuck', to: origin.url }] })
  hang()
  await new Promise(r => setTimeout(r, 300))
  process.kill(relay.pid, 'SIGTERM')
  await relay.waitForLog(l => l['msg'] === 'draining', 2000, 'draining line')
  const relaySecond = Date.now()
  process.kill(relay.pid, 'SIGTERM')
  t.equal(await relay.exited, 1, 'relay: exit 1 after the second SIGTERM')
  t.ok(Date.now() - relaySecond < 1000, `relay gone ${Date.now() - relaySecond} ms after the second signal`)
})
