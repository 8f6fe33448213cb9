// A network partition between agent and relay with requests in flight (SECURITY F8): no FIN, no
// RST, the bytes just stop. Every visitor gets an answer within the relay's heartbeat, no stream
// outlives the dead session, the origin's requests are cancelled once the agent notices, and the
// agent serves again after the path heals.
import t from 'tap'
import http from 'node:http'
import type { IncomingMessage } from 'node:http'
import { startHttpOrigin } from './harness/origins.js'
import { startLinkProxy } from './harness/partition.js'
import { startAgent, startRelay } from './harness/processes.js'
import { visit } from './harness/visitor.js'
import { pollUntil } from './harness/wait.js'

const GETS = 40
const UPLOADS = 10
/** Declared upload size; only UPLOAD_SENT of it is sent before the partition. */
const UPLOAD_BYTES = 10 * 1024 * 1024
const UPLOAD_SENT = 256 * 1024

interface Outcome { status: number; ms: number }

/** A request whose answer (or connection error, status 0) is timed from `since()`. */
function inFlight(port: number, host: string, method: string, path: string, since: () => number, body?: Buffer): Promise<Outcome> {
  return new Promise(resolve => {
    const headers: Record<string, string | number> = { host }
    if (body) headers['content-length'] = UPLOAD_BYTES
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false })
    const done = (status: number): void => resolve({ status, ms: Date.now() - since() })
    req.on('response', (res: IncomingMessage) => { res.resume(); res.on('end', () => done(res.statusCode ?? 0)); res.on('error', () => done(res.statusCode ?? 0)) })
    req.on('error', () => done(0))
    if (body) req.write(body)
    else req.end()
  })
}

t.test('a partition with 50 requests in flight: all answered within the heartbeat, origin work cancelled, service back after it heals', async t => {
  let cancelled = 0
  let arrived = 0
  const hold = (req: IncomingMessage): void => {
    arrived++
    // The origin never answers; it only notes when the agent gives the request up.
    req.resume()
    req.socket.once('close', () => { cancelled++ })
  }
  const origin = await startHttpOrigin(t, {
    '/hold': hold,
    '/upload-hold': hold,
    '/who': (_req, res) => res.end('laptop'),
  })
  // 1 s pings, 2 s silence: the relay must call the link dead about 3 s into the partition.
  const relay = await startRelay(t, { heartbeat: { interval_ms: 1000, timeout_ms: 2000 } })
  const proxy = await startLinkProxy(t, relay.agentsPort)
  await startAgent(t, relay, { tunnels: [{ http: 'island', to: origin.url }], extra: { relay: `ws://127.0.0.1:${proxy.port}` } })
  const host = 'island.localhost'
  t.equal((await visit(relay.publicPort, { host, path: '/who' })).text, 'laptop', 'served through the proxy before the partition')

  let cutAt = 0
  const since = (): number => cutAt
  const outcomes = [
    ...Array.from({ length: GETS }, () => inFlight(relay.publicPort, host, 'GET', '/hold', since)),
    ...Array.from({ length: UPLOADS }, () => inFlight(relay.publicPort, host, 'POST', '/upload-hold', since, Buffer.alloc(UPLOAD_SENT, 'u'))),
  ]
  const reached = await pollUntil(async () => arrived, n => n === GETS + UPLOADS, { timeoutMs: 10_000 })
  t.equal(reached.value, GETS + UPLOADS, 'all 50 requests reached the origin before the partition')

  cutAt = Date.now()
  proxy.blackhole()
  const results = await Promise.all(outcomes)
  const statuses = [...new Set(results.map(r => r.status))]
  t.same(statuses, [503], 'every visitor is told the tunnel is offline (503), none left hanging')
  const slowest = Math.max(...results.map(r => r.ms))
  t.ok(slowest <= 5000, `all 50 answered ${slowest} ms into the partition (heartbeat 1 s + 2 s, slack 2 s)`)

  const gone = await pollUntil(() => relay.connectedAgents(), list => list.length === 0, { timeoutMs: 2000 })
  t.same(gone.value, [], 'the dead session and its 50 streams are gone from the relay')
  t.equal((await visit(relay.publicPort, { host, path: '/who' })).status, 503, 'new visitors get 503 during the partition')

  // The agent's own heartbeat (10 s pings, 20 s silence) finds the partition; it then resets the
  // origin requests rather than leaving them open for the origin's timeouts.
  const reset = await pollUntil(async () => cancelled, n => n === GETS + UPLOADS, { timeoutMs: 35_000, intervalMs: 200 })
  t.equal(reset.value, GETS + UPLOADS, `the origin saw all 50 requests cancelled ${Date.now() - cutAt} ms into the partition (agent heartbeat: within 30 s)`)

  proxy.heal()
  const healedAt = Date.now()
  const back = await pollUntil(() => visit(relay.publicPort, { host, path: '/who' }).catch(() => null), r => r?.status === 200, { timeoutMs: 15_000, intervalMs: 200 })
  t.equal(back.value?.text, 'laptop', `served again ${Date.now() - healedAt} ms after the path healed`)
  const sessions = await relay.connectedAgents()
  t.equal(sessions.length, 1, 'exactly one session after healing')
})
