// Dead links without a FIN (laptop asleep, process frozen) are found by heartbeat on both sides,
// and an agent that reconnects replaces its own stale session at once (SECURITY A16, F5).
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { startAgent, startRelay } from './harness/processes.js'
import { visit, type VisitResult } from './harness/visitor.js'
import { pollUntil } from './harness/wait.js'

async function probe(port: number, host: string): Promise<VisitResult> {
  try {
    return await visit(port, { host, path: '/who', timeoutMs: 1500 })
  } catch (err) {
    return { status: 0, headers: {}, body: Buffer.alloc(0), text: String(err), localPort: undefined }
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try { process.kill(pid, sig) } catch { /* already gone */ }
}

t.test('relay drops a frozen agent within interval + timeout, and serves again when it wakes', async t => {
  const origin = await startHttpOrigin(t, { '/who': (_req, res) => res.end('laptop') })
  // 1 s pings, 2 s tolerance: the relay must see the silent link as dead in about 3 s.
  const relay = await startRelay(t, { heartbeat: { interval_ms: 1000, timeout_ms: 2000 } })
  const agent = await startAgent(t, relay, { tunnels: [{ http: 'sleepy', to: origin.url }] })
  const host = 'sleepy.localhost'
  t.equal((await probe(relay.publicPort, host)).text, 'laptop')

  signal(agent.pid, 'SIGSTOP')
  t.teardown(() => signal(agent.pid, 'SIGCONT'))
  const offline = await pollUntil(() => probe(relay.publicPort, host), r => r.status === 503, { timeoutMs: 6000, intervalMs: 200 })
  t.equal(offline.value.status, 503, `frozen agent shown offline after ${offline.ms} ms`)
  t.ok(offline.ms <= 6000, 'within heartbeat interval + timeout + slack')

  signal(agent.pid, 'SIGCONT')
  const back = await pollUntil(() => probe(relay.publicPort, host), r => r.status === 200, { timeoutMs: 8000, intervalMs: 200 })
  t.equal(back.value.text, 'laptop', `agent back ${back.ms} ms after waking`)
})

t.test('agent notices a frozen relay within 30 s and reconnects when it wakes', async t => {
  const origin = await startHttpOrigin(t, { '/who': (_req, res) => res.end('laptop') })
  const relay = await startRelay(t)
  const agent = await startAgent(t, relay, { tunnels: [{ http: 'watch', to: origin.url }] })
  const frozenAt = Date.now()
  signal(relay.pid, 'SIGSTOP')
  t.teardown(() => signal(relay.pid, 'SIGCONT'))
  await agent.waitForLine(/"msg":"link lost"/, 32_000, 'agent logs the lost link')
  const detectedMs = Date.now() - frozenAt
  t.ok(detectedMs <= 31_000, `agent saw the dead link after ${detectedMs} ms (limit 30 s + 1 s slack)`)
  signal(relay.pid, 'SIGCONT')
  const back = await pollUntil(() => probe(relay.publicPort, 'watch.localhost'), r => r.status === 200, { timeoutMs: 10_000, intervalMs: 200 })
  t.equal(back.value.text, 'laptop', `served again ${back.ms} ms after the relay woke`)
})

t.test('a reconnect by the same agent replaces its stale session at once', async t => {
  const oldOrigin = await startHttpOrigin(t, { '/who': (_req, res) => res.end('old session') })
  const newOrigin = await startHttpOrigin(t, { '/who': (_req, res) => res.end('new session') })
  // Default-length heartbeat: without replacement the stale session would linger for up to 30 s.
  const relay = await startRelay(t)
  const stale = await startAgent(t, relay, { tunnels: [{ http: 'wake', to: oldOrigin.url }] })
  const host = 'wake.localhost'
  t.equal((await probe(relay.publicPort, host)).text, 'old session')
  signal(stale.pid, 'SIGSTOP')
  t.teardown(() => { signal(stale.pid, 'SIGKILL'); signal(stale.pid, 'SIGCONT') })

  const started = Date.now()
  const fresh = await startAgent(t, relay, { tunnels: [{ http: 'wake', to: newOrigin.url }] })
  t.equal(fresh.forwarding.length, 1, 'the same hostname is accepted for the new session')
  const served = await pollUntil(() => probe(relay.publicPort, host), r => r.text === 'new session', { timeoutMs: 1000, intervalMs: 50 })
  t.equal(served.value.status, 200)
  t.ok(Date.now() - started < 3000, `new session serving ${Date.now() - started} ms after it started`)
  const replaced = await relay.waitForLog(l => l['msg'] === 'agent disconnected' && l['agent'] === 'laptop', 2000, 'stale session closed')
  t.equal(replaced['agent'], 'laptop')
  t.equal((await relay.connectedAgents()).filter(a => a.name === 'laptop').length, 1, 'exactly one session for the agent')
})

// SECURITY F9: duplicate identity; a hostname keeps one owner, routing never splits.
t.test('two live processes with one identity hold sessions side by side; a hostname keeps one owner until it is gone', async t => {
  const firstOrigin = await startHttpOrigin(t, { '/who': (_req, res) => res.end('first') })
  const secondOrigin = await startHttpOrigin(t, { '/who': (_req, res) => res.end('second') })
  const relay = await startRelay(t)
  const first = await startAgent(t, relay, { tunnels: [{ http: 'dup', to: firstOrigin.url }] })
  const host = 'dup.localhost'
  t.equal((await probe(relay.publicPort, host)).text, 'first')

  // Same token, another process: it connects at once; its own site serves, its claim on the
  // first one's hostname is refused with a reason, and the first link is never replaced.
  const second = await startAgent(t, relay, {
    tunnels: [{ http: 'dup', to: secondOrigin.url }, { http: 'own', to: secondOrigin.url }],
    forwarding: 1,
    waitFor: /PL_ERR_POLICY_HOST_TAKEN/,
  })
  t.same(second.urls, [`http://own.localhost:${relay.publicPort}`], 'the second process publishes its own site only')
  t.match(second.stderr(), /host dup\.localhost is served by another running process of agent laptop/, 'and names why dup was refused')
  t.equal((await probe(relay.publicPort, 'own.localhost')).text, 'second')
  t.equal((await probe(relay.publicPort, host)).text, 'first', 'the first process still serves its hostname')
  t.equal(relay.logs().filter(l => l['msg'] === 'agent disconnected').length, 0, 'no session was replaced')
  t.equal((await relay.connectedAgents()).filter(a => a.name === 'laptop').length, 2, 'two sessions of one agent')

  // The first one goes away for good: its hostname is offline (still reserved for this agent),
  // and the second process may take it over on its next publish (SIGHUP).
  signal(first.pid, 'SIGKILL')
  const offline = await pollUntil(() => probe(relay.publicPort, host), r => r.status === 503, { timeoutMs: 5000, intervalMs: 100 })
  t.equal(offline.value.status, 503, `offline ${offline.ms} ms after the first process was killed`)
  process.kill(second.pid, 'SIGHUP')
  const taken = await pollUntil(() => probe(relay.publicPort, host), r => r.text === 'second', { timeoutMs: 5000, intervalMs: 100 })
  t.equal(taken.value.status, 200, `the second process serves dup ${taken.ms} ms after its re-publish`)
})
