import t from 'tap'
import { pollUntil } from '../e2e/harness/wait.js'
import { failures, startCluster, startClusterAgent, startEchoOrigin, startRedis, startTcpHop, visit, waitForLinks } from './harness.js'

// Done-when 5: one relay cut from Redis (a blackholed path, no FIN, no RST) fails /readyz within
// 6 s while its peers still reach Redis; open sites keep serving on it; a share link revoked
// meanwhile elsewhere is refused by it (503 past max_staleness) within 5 s, and by 401 once healed.

t.test('one relay cut from Redis: /readyz 503 within 6 s, open sites serve, revoked links refused', async (t) => {
  const redis = await startRedis(t)
  const hop = await startTcpHop(t, { host: '127.0.0.1', port: redis.port })
  const relays = await startCluster(t, { redis, agents: ['one', 'two'], redisUrlFor: (i) => (i === 2 ? `redis://127.0.0.1:${hop.port}` : redis.url) })
  const [r1, , r3] = [relays[0]!, relays[1]!, relays[2]!]
  const origins = await Promise.all(['one', 'two'].map((a) => startEchoOrigin(t, a)))
  const linked = await startClusterAgent(t, relays, 'one', origins[0]!, {}, { access: { links: true }, inspect: true })
  await startClusterAgent(t, relays, 'two', origins[1]!)
  t.ok((await waitForLinks(relays, ['one', 'two'], 10_000)).ok, 'both agents linked to every relay')
  const inspect = String(linked.logs().find((l) => l['msg'] === 'status API listening')?.['inspect'])
  const createLink = async (): Promise<{ id: string; token: string }> => {
    const body = await (await fetch(`http://${inspect}/api/links`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ host: 'one', expires: '1h' }) })).json() as { id: string; url: string }
    return { id: body.id, token: new URL(body.url).searchParams.get('porchlight_share') ?? '' }
  }
  const shareStatus = (relay: typeof r1, token: string) => visit(relay.ports.public, 'one.localhost', 3000, relay.ip, `/?porchlight_share=${encodeURIComponent(token)}`).then((o) => o.status)
  const link = await createLink()
  t.notOk([await shareStatus(r3, link.token)].includes(401), 'the link opens on r3 before the cut')

  hop.set('blackhole')
  const cutAt = Date.now()
  const served: Array<ReturnType<typeof visit>> = []
  const ready = await pollUntil(async () => {
    served.push(visit(r3.ports.public, 'two.localhost', 5000, r3.ip))
    return r3.readyz()
  }, (s) => s === 503, { timeoutMs: 15_000, intervalMs: 100 })
  const ms = Date.now() - cutAt
  t.equal(ready.value, 503, 'r3 /readyz fails')
  t.ok(ms <= 6_000, `within 6 s of the cut (${ms} ms)`)
  t.same(await Promise.all(relays.slice(0, 2).map((r) => r.readyz())), [200, 200], 'r1 and r2 still reach Redis and stay ready')
  const open = await Promise.all(served)
  t.same(failures(open), [], `the open site kept serving on r3 throughout (${open.length} requests)`)

  // Revoked through r1 while r3 is cut: r3 never hears of it, but refuses the link-protected site.
  await fetch(`http://${inspect}/api/links/${link.id}`, { method: 'DELETE' })
  const revokedAt = Date.now()
  t.equal(await shareStatus(r1, link.token), 401, 'r1 refuses the revoked link')
  const onR3 = await pollUntil(() => shareStatus(r3, link.token), (s) => s === 503 || s === 401, { timeoutMs: 5_000 })
  t.ok(onR3.ok && Date.now() - revokedAt <= 5_000, `r3 refuses it within 5 s of the revoke (${onR3.value} after ${onR3.ms} ms)`)
  t.equal((await visit(r3.ports.public, 'two.localhost', 3000, r3.ip)).status, 200, 'the open site still serves on r3')

  // Healed: r3 replays the stream from its last id and is ready again; the revocation holds there.
  hop.set('pass')
  const back = await pollUntil(() => r3.readyz(), (s) => s === 200, { timeoutMs: 15_000, intervalMs: 100 })
  t.equal(back.value, 200, `r3 ready again ${back.ms} ms after the heal`)
  t.equal((await pollUntil(() => shareStatus(r3, link.token), (s) => s === 401, { timeoutMs: 5_000 })).value, 401, 'r3 now refuses the link as revoked (401)')
})
