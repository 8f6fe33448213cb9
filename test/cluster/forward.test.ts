import { readFileSync } from 'node:fs'
import http from 'node:http'
import t from 'tap'
import { loadClusterKeys } from '../../packages/server/src/cluster/keys.js'
import { signPeerRequest } from '../../packages/server/src/cluster/peer-auth.js'
import { pollUntil } from '../e2e/harness/wait.js'
import { failures, misrouted, startCluster, startClusterAgent, startEchoOrigin, startRedis, visit, waitForLinks } from './harness.js'

// A relay without a live link for a host forwards the request once, over listen.peer, to a member
// whose heartbeat lists one; the peer serves it over its own link and never forwards it again.
const agentOf = (host: string): string => host.split('.')[0]!

t.test('no local link: forwarded once to the peer that has one; none anywhere: 503', async (t) => {
  const redis = await startRedis(t)
  const relays = await startCluster(t, { redis, agents: ['one'], count: 2, agentsHops: [1] })
  const [r1, r2] = [relays[0]!, relays[1]!]
  const origin = await startEchoOrigin(t, 'one')
  const agent = await startClusterAgent(t, relays, 'one', origin)
  t.ok((await waitForLinks(relays, ['one'], 10_000)).ok, 'linked to both relays')
  // Peers learn which hosts a member serves from its heartbeat: one to write it, one to read it.
  await new Promise((r) => setTimeout(r, 2_500))

  // Cut only the agent's link to r2 (its advertised agents URL goes through the hop).
  r2.agentsHop!.set('reset')
  const gone = await pollUntil(() => r2.linksOf('one'), (n) => n === 0, { timeoutMs: 10_000 })
  t.ok(gone.ok, `r2 lost its link (${gone.ms} ms)`)
  const viaR2 = await Promise.all([1, 2, 3, 4, 5].map(() => visit(r2.ports.public, 'one.localhost', 5000, r2.ip)))
  t.same(failures(viaR2), [], 'r2 answers every request through r1')
  t.same(misrouted(viaR2, agentOf), [], 'misrouted = 0')
  t.ok(r2.proc.logs().every((l) => l['code'] !== 'PL_ERR_CLUSTER_PEER'), 'no forward failed')
  // The serving relay logs them (its access log line, with the visitor's address).
  const served = await pollUntil(async () => r1.proc.accessLogs().filter((l) => l['host'] === 'one.localhost').length, (n) => n >= 5, { timeoutMs: 5_000 })
  t.ok(served.ok, `r1 logged the forwarded requests (${served.value})`)

  // A signed peer request for a host the peer has no link for is answered there: 503, never sent on.
  const keys = loadClusterKeys(String((readFileSync(r1.proc.configFile, 'utf8').match(/secret_file: (\S+)/) ?? [])[1]))
  const peerAsk = (relay: typeof r1, sign: boolean) => new Promise<number>((resolve) => {
    const headers: Record<string, string> = { host: 'one.localhost' }
    if (sign) for (const [k, v] of signPeerRequest(keys.peer, { from: relay.id === 'r1' ? 'r2' : 'r1', visitor: '127.0.0.1', proto: 'http' }, { method: 'GET', host: 'one.localhost', url: '/' })) headers[k] = v
    else Object.assign(headers, { 'x-porchlight-peer': 'r1', 'x-porchlight-peer-time': String(Date.now()), 'x-porchlight-peer-visitor': '127.0.0.1', 'x-porchlight-peer-proto': 'http', 'x-porchlight-peer-sig': 'A'.repeat(43) })
    http.get({ host: relay.ip, port: relay.ports.peer, path: '/', headers, agent: false }, (res) => { res.resume(); resolve(res.statusCode ?? 0) }).on('error', () => resolve(0))
  })
  t.equal(await peerAsk(r2, true), 503, 'r2 has no link: a forwarded request gets 503 there, it is not forwarded back')
  t.equal(await peerAsk(r1, true), 200, 'r1 serves a signed forwarded request over its link')
  t.equal(await peerAsk(r1, false), 401, 'a bad signature is refused')

  // With no link anywhere, every relay answers 503 itself.
  await agent.kill('SIGTERM')
  const offline = await pollUntil(() => visit(r2.ports.public, 'one.localhost', 5000, r2.ip), (o) => o.status === 503, { timeoutMs: 10_000 })
  t.equal(offline.value.status, 503, 'no link on any member: 503')
  t.equal((await visit(r1.ports.public, 'one.localhost', 5000, r1.ip)).status, 503)
})
