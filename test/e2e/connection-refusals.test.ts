// SECURITY.md A4/E1 and issue 14: a connection over `limits.max_connections_per_ip` is never
// refused in silence. It reads its request head and gets 503 + Retry-After (within a relay-wide
// budget of such answers; past it, it is closed), each refusal is counted in /metrics by limit and
// listener, and the log gets one summary line per address, not one per connection.
import { connect } from 'node:net'
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { startAgent, startRelay } from './harness/processes.js'
import { rawStatus } from './harness/visitor.js'

const CAP = 16
const CONNECTIONS = 200
const HOLD_MS = 1500

const origin = await startHttpOrigin(t, {
  '/hold': (req, res) => {
    req.resume()
    setTimeout(() => res.end('held'), HOLD_MS)
  },
})
const relay = await startRelay(t, { limits: { max_connections_per_ip: CAP } })
await startAgent(t, relay, { tunnels: [{ http: 'site', to: origin.url }] })

/** One request on its own connection: the status line's code, or 0 if closed with no response. */
function request(from: string): Promise<{ status: number; retryAfter: string | null }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: relay.publicPort, localAddress: from })
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', () => undefined)
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1')
      resolve({ status: rawStatus(text), retryAfter: /\r\nretry-after: (\S+)\r\n/i.exec(text)?.[1] ?? null })
    })
    socket.write('GET /hold HTTP/1.1\r\nHost: site.localhost\r\nConnection: close\r\n\r\n')
    setTimeout(() => socket.destroy(), 15_000).unref()
  })
}

async function refusedTotal(): Promise<Record<string, number>> {
  const res = await fetch(`${relay.adminUrl}/metrics`, { headers: { authorization: `Bearer ${relay.adminToken}` } })
  const out: Record<string, number> = {}
  for (const m of (await res.text()).matchAll(/^porchlight_connections_refused_total\{([^}]*)\} (\d+)$/gm)) out[m[1]!] = Number(m[2])
  return out
}

t.test(`${CONNECTIONS} concurrent connections from one address with a cap of ${CAP}`, { timeout: 60_000 }, async (t) => {
  const results = await Promise.all(Array.from({ length: CONNECTIONS }, () => request('127.0.0.3')))
  const served = results.filter((r) => r.status === 200).length
  const answered = results.filter((r) => r.status === 503)
  const silent = results.filter((r) => r.status === 0).length
  t.equal(served, CAP, `${CAP} connections within the cap were served`)
  t.equal(served + answered.length + silent, CONNECTIONS, 'every connection was served, answered 503 or closed')
  t.ok(answered.length >= (CONNECTIONS - CAP) / 2, `${answered.length} of ${CONNECTIONS - CAP} over the cap got a 503 (${silent} closed past the answer budget)`)
  t.ok(answered.every((r) => r.retryAfter === '1'), 'each 503 carries Retry-After: 1')

  const counted = await refusedTotal()
  t.equal((counted['limit="max_connections_per_ip",listener="public",answered="true"'] ?? 0), answered.length, '/metrics counts the answered refusals')
  t.equal((counted['limit="max_connections_per_ip",listener="public",answered="false"'] ?? 0), silent, '/metrics counts the closed ones')

  t.equal((await request('127.0.0.4')).status, 200, 'another address is served meanwhile')

  // The summary is written per interval; stopping the relay writes the pending one.
  await relay.kill('SIGTERM')
  const summaries = relay.logs().filter((l) => l['msg'] === 'connections refused: over the per-address limit')
  t.equal(summaries.length, 1, 'one summary line for the address, not one per connection')
  t.match(summaries[0], { code: 'PL_ERR_HTTP_TOO_MANY_CONNECTIONS', listener: 'public', ip: '127.0.0.3', answered: answered.length, dropped: silent })
  t.equal(relay.accessLogs().filter((l) => l['status'] === 503).length, 0, 'refusals are not access-log lines')
})
