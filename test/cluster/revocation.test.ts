import t from 'tap'
import { startCluster, startClusterAgent, startEchoOrigin, startRedis, visit, waitForLinks } from './harness.js'

// Done-when 6 (share links): in a healthy cluster a share link revoked through one relay is
// refused by every relay within 500 ms (the worst of 20 trials): the revocation travels on a
// Redis Stream each relay reads continuously. Links minted by one member verify on all.
const TRIALS = 20
const BOUND_MS = 500

t.test(`a revoked share link is refused on every relay within ${BOUND_MS} ms (max of ${TRIALS})`, async (t) => {
  const redis = await startRedis(t)
  const relays = await startCluster(t, { redis, agents: ['one'] })
  const origin = await startEchoOrigin(t, 'one')
  const agent = await startClusterAgent(t, relays, 'one', origin, {}, { access: { links: true }, inspect: true })
  t.ok((await waitForLinks(relays, ['one'], 10_000)).ok, 'linked to every relay')
  const inspect = String(agent.logs().find((l) => l['msg'] === 'status API listening')?.['inspect'])
  const api = (path: string, init?: RequestInit) => fetch(`http://${inspect}${path}`, init).then(async (r) => ({ status: r.status, body: await r.json() as Record<string, unknown> }))
  const shareStatus = (relay: typeof relays[number], token: string) => visit(relay.ports.public, 'one.localhost', 3000, relay.ip, `/?porchlight_share=${encodeURIComponent(token)}`).then((o) => o.status)

  const worst: number[] = []
  for (let trial = 0; trial < TRIALS; trial++) {
    const created = await api('/api/links', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ host: 'one', expires: '1h' }) })
    t.equal(created.status, 201, `trial ${trial}: link created`)
    const token = new URL(String(created.body['url'])).searchParams.get('porchlight_share') ?? ''
    const before = await Promise.all(relays.map((r) => shareStatus(r, token)))
    t.ok(before.every((s) => s !== 401 && s >= 200 && s < 400), `trial ${trial}: valid on every relay (${before.join(',')})`)
    const revoked = await api(`/api/links/${String(created.body['id'])}`, { method: 'DELETE' })
    t.equal(revoked.status, 200, 'revoked')
    const at = Date.now()
    const took = await Promise.all(relays.map(async (r) => {
      while (Date.now() - at < 5_000) {
        if (await shareStatus(r, token) === 401) return Date.now() - at
        await new Promise((res) => setTimeout(res, 5))
      }
      return Infinity
    }))
    worst.push(Math.max(...took))
  }
  const max = Math.max(...worst)
  t.ok(max <= BOUND_MS, `refused on all 3 relays within ${max} ms at worst (per trial: ${worst.join(', ')})`)
  // Every member lists the link as revoked, wherever it was made.
  const listed = await Promise.all(relays.map(async (r) => (await (await fetch(`${r.adminUrl}/api/links`, { headers: { authorization: `Bearer ${r.proc.adminToken}` } })).json()) as Array<{ revoked: boolean }>))
  t.same(listed.map((l) => l.filter((x) => x.revoked).length), [TRIALS, TRIALS, TRIALS], 'every relay lists all 20 as revoked')
})
