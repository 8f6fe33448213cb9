// Agents and relays come and go: an agent that dies shows "tunnel offline" at once, one that comes
// back serves again, and a restarted relay gets its agent back within the backoff cap.
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { startAgent, startRelay } from './harness/processes.js'
import { visit, type VisitResult } from './harness/visitor.js'
import { pollUntil } from './harness/wait.js'

/** The agent's backoff cap in tests (harness env PORCHLIGHT_BACKOFF_MAX_MS). */
const BACKOFF_MAX_MS = 2000

/** A visit that reports a refused or reset connection as status 0 instead of throwing. */
async function probe(port: number, host: string): Promise<VisitResult> {
  try {
    return await visit(port, { host, path: '/probe', timeoutMs: 2000 })
  } catch (err) {
    return { status: 0, headers: {}, body: Buffer.alloc(0), text: String(err), localPort: undefined }
  }
}

async function adminGet(url: string, path: string, token: string | null): Promise<{ status: number; body: string }> {
  const res = await fetch(`${url}${path}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } })
  return { status: res.status, body: await res.text() }
}

t.test('agent and relay restarts', async t => {
  const origin = await startHttpOrigin(t, { '/probe': (_req, res) => res.end('origin ok') })
  const relay = await startRelay(t)
  const tunnels = [{ http: 'blog', to: origin.url }]
  const first = await startAgent(t, relay, { tunnels })
  const host = 'blog.localhost'
  t.equal((await probe(relay.publicPort, host)).text, 'origin ok')

  // SECURITY F1 (c): the host shows offline within 1 s.
  await t.test('a killed agent shows 503 "tunnel offline" within 1 s', async t => {
    await first.kill('SIGKILL')
    const offline = await pollUntil(() => probe(relay.publicPort, host), r => r.status === 503, { timeoutMs: 1000 })
    t.equal(offline.value.status, 503, `after ${offline.ms} ms`)
    t.match(offline.value.text, /tunnel offline/i)
  })

  const second = await startAgent(t, relay, { tunnels })
  await t.test('a restarted agent serves again', async t => {
    const back = await pollUntil(() => probe(relay.publicPort, host), r => r.status === 200, { timeoutMs: 3000 })
    t.equal(back.value.status, 200, `after ${back.ms} ms`)
    t.equal(back.value.text, 'origin ok')
  })

  // SECURITY F3: relay restart; the jitter spread of many agents is packages/agent/test/backoff.test.ts.
  await t.test('a relay killed and restarted on the same ports gets the agent back', async t => {
    const ports = [relay.publicPort, relay.agentsPort, relay.adminPort]
    await relay.kill('SIGKILL')
    await relay.restart()
    t.same([relay.publicPort, relay.agentsPort, relay.adminPort], ports, 'same ports after restart')
    const back = await pollUntil(() => probe(relay.publicPort, host), r => r.status === 200, { timeoutMs: BACKOFF_MAX_MS + 3000, intervalMs: 100 })
    t.equal(back.value.status, 200, `agent back after ${back.ms} ms (limit ${BACKOFF_MAX_MS + 3000} ms)`)
    t.equal(back.value.text, 'origin ok')
    t.ok(second.handle.running, 'the agent process kept running through the relay restart')
  })

  // SECURITY F4: long relay outage, scaled down (PORCHLIGHT_BACKOFF_MAX_MS=2000 caps the backoff).
  await t.test('a relay down for 6 s (several failed retries): the agent keeps trying and is back within the backoff cap', async t => {
    await relay.kill('SIGKILL')
    const failedBefore = second.stderr().split('\n').filter(l => l.includes('PL_ERR_LINK_CONNECT')).length
    await new Promise(resolve => setTimeout(resolve, 6000))
    const failed = second.stderr().split('\n').filter(l => l.includes('PL_ERR_LINK_CONNECT')).length - failedBefore
    t.ok(failed >= 3, `the agent retried ${failed} times while the relay was down`)
    t.ok(second.handle.running, 'and is still running')
    const restarted = Date.now()
    await relay.restart()
    const back = await pollUntil(() => probe(relay.publicPort, host), r => r.status === 200, { timeoutMs: BACKOFF_MAX_MS + 3000, intervalMs: 100 })
    t.equal(back.value.text, 'origin ok', `serving again ${Date.now() - restarted} ms after the relay came back (cap ${BACKOFF_MAX_MS} ms)`)
  })

  await t.test('the admin API lists the connected agent', async t => {
    const adminUrl = relay.adminUrl
    if (adminUrl === null) throw new Error('the relay reported no admin listener')
    t.equal((await adminGet(adminUrl, '/healthz', null)).status, 200)
    t.equal((await adminGet(adminUrl, '/api/agents', null)).status, 401, 'no token -> 401')
    t.equal((await adminGet(adminUrl, '/api/agents', 'wrong')).status, 401, 'wrong token -> 401')
    const res = await adminGet(adminUrl, '/api/agents', relay.adminToken)
    t.equal(res.status, 200)
    const agents = JSON.parse(res.body) as Array<{ name: string; session: string; connectedAt: unknown; tunnels: Array<{ id: string; kind: string; host?: string; url: string }> }>
    t.equal(agents.length, 1, res.body)
    t.equal(agents[0]?.name, 'laptop')
    t.equal(typeof agents[0]?.session, 'string')
    const tunnel = agents[0]?.tunnels[0]
    t.equal(agents[0]?.tunnels.length, 1)
    t.equal(tunnel?.kind, 'http')
    t.equal(tunnel?.host, host)
    t.match(tunnel?.url ?? '', `http://${host}`)
  })
})
