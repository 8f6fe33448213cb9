import { readFileSync } from 'node:fs'
import https from 'node:https'
import http from 'node:http'
import t from 'tap'
import { loadClusterKeys } from '../../packages/server/src/cluster/keys.js'
import { signPeerRequest } from '../../packages/server/src/cluster/peer-auth.js'
import { FRESH_PATH } from '../../packages/server/src/cluster/peer-server.js'
import { createTestCa } from '../../packages/shared/src/pki/testing.js'
import { initPki, issuePeerCert } from '../e2e/harness/pki.js'
import { pollUntil } from '../e2e/harness/wait.js'
import { failures, misrouted, startCluster, startHaproxy, startTcpHop, startClusterAgent, startEchoOrigin, startRedis, visit, waitForLinks, type ClusterRelay } from './harness.js'

// cluster.peer_tls: listen.peer is https with client certificates from the cluster's CA, both ways
// verified; the HMAC is still required on top. A balancer's /readyz needs no certificate.
const agentOf = (host: string): string => host.split('.')[0]!

t.test('mTLS on listen.peer: forwards work, no or a foreign certificate gets nothing, /readyz answers', async (t) => {
  const pki = await initPki(t)
  const peerCerts = [await issuePeerCert(pki, ['127.0.0.11'], 'peer-r1'), await issuePeerCert(pki, ['127.0.0.12'], 'peer-r2')]
  const redis = await startRedis(t)
  const relays = await startCluster(t, { redis, agents: ['one'], count: 2, agentsHops: [1], peerTls: (i) => peerCerts[i]! })
  const [r1, r2] = [relays[0]!, relays[1]!]
  t.match(r1.peerUrl, /^https:\/\/127\.0\.0\.11:\d+$/, 'advertised as https')
  const origin = await startEchoOrigin(t, 'one')
  await startClusterAgent(t, relays, 'one', origin)
  t.ok((await waitForLinks(relays, ['one'], 10_000)).ok, 'linked to both relays')
  await new Promise((r) => setTimeout(r, 2_500))

  // Only r1 keeps a link: r2 forwards to r1 over mTLS.
  r2.agentsHop!.set('reset')
  t.ok((await pollUntil(() => r2.linksOf('one'), (n) => n === 0, { timeoutMs: 10_000 })).ok, 'r2 lost its link')
  const viaR2 = await Promise.all([1, 2, 3, 4, 5].map(() => visit(r2.ports.public, 'one.localhost', 5000, r2.ip)))
  t.same(failures(viaR2), [], 'r2 answers every request through r1')
  t.same(misrouted(viaR2, agentOf), [], 'misrouted = 0')
  t.ok(r2.proc.logs().every((l) => l['code'] !== 'PL_ERR_CLUSTER_PEER'), 'no forward failed')
  const served = await pollUntil(async () => r1.proc.accessLogs().filter((l) => l['host'] === 'one.localhost').length, (n) => n >= 5, { timeoutMs: 5_000 })
  t.ok(served.ok, `r1 served the forwarded requests (${served.value} access log lines)`)

  // Direct requests to r1's peer listener, every one carrying a valid HMAC: only the TLS layer differs.
  const keys = loadClusterKeys(String((readFileSync(r1.proc.configFile, 'utf8').match(/secret_file: (\S+)/) ?? [])[1]))
  const foreignCa = await createTestCa({ commonName: 'Another cluster CA' })
  const foreign = await issuePeerCert(pki, ['127.0.0.12'], 'foreign-peer', foreignCa)
  const pem = (f: string): Buffer => readFileSync(f)
  const asR2 = { cert: pem(peerCerts[1]!.cert), key: pem(peerCerts[1]!.key) }
  const before = origin.served
  t.equal((await peerAsk(r1, keys.peer, '/', asR2)).status, 200, 'r2\'s certificate and signature: served over r1\'s link')
  t.equal(origin.served, before + 1, 'that one request reached the origin')
  const fresh = await peerAsk(r1, keys.peer, FRESH_PATH, asR2)
  t.same([fresh.status, fresh.body], [200, '{"fresh":true}'], 'freshness probe over mTLS')

  const noCert = await peerAsk(r1, keys.peer, '/', {})
  t.equal(noCert.status, 401, 'no client certificate: 401 despite a valid signature')
  t.match(noCert.body, /PL_ERR_CLUSTER_PEER/)
  const foreignRes = await peerAsk(r1, keys.peer, '/', { cert: pem(foreign.cert), key: pem(foreign.key) })
  t.ok(foreignRes.status === 401 || foreignRes.status === 0, `a certificate from another CA: refused (${foreignRes.status} ${foreignRes.error ?? ''})`)
  const plain = await new Promise<number>((resolve) => {
    http.get({ host: r1.ip, port: r1.ports.peer, path: '/', agent: false, timeout: 2000 }, (res) => { res.resume(); resolve(res.statusCode ?? 0) }).on('error', () => resolve(0)).on('timeout', function (this: http.ClientRequest) { this.destroy() })
  })
  t.equal(plain, 0, 'plain http on the TLS peer port gets no HTTP answer')
  t.equal(origin.served, before + 1, 'nothing else reached the origin')
  t.ok(r1.proc.logs().some((l) => l['code'] === 'PL_ERR_CLUSTER_PEER' && l['msg'] === 'peer request refused: no valid client certificate'), 'r1 logged the refusals')

  t.equal(await r1.readyz(), 200, '/readyz without a client certificate: 200')
  t.equal(await r2.readyz(), 200)

  // HAProxy checks /readyz with check-ssl and no client certificate (deploy/examples/haproxy.cfg).
  // Servers start up in HAProxy; after several 200 ms checks, only the relays that pass them are.
  const [plainChecks, tlsChecks] = [await startHaproxy(t, relays), await startHaproxy(t, relays, { checkSsl: true })]
  await new Promise((r) => setTimeout(r, 2_000))
  const down = await pollUntil(() => visit(plainChecks.port, 'one.localhost', 2000), (o) => o.status === 0, { timeoutMs: 5_000, intervalMs: 200 })
  t.ok(down.ok, 'plain-http checks against the TLS peer port fail: HAProxy marks every relay down')
  const through = await Promise.all([1, 2, 3, 4].map(() => visit(tlsChecks.port, 'one.localhost', 5000)))
  t.same(through.map((o) => [o.status, o.served?.agent]), [[200, 'one'], [200, 'one'], [200, 'one'], [200, 'one']], 'check-ssl without a client certificate passes: visitors served through both relays')
})

interface PeerAnswer { status: number; body: string; error: string | null }

/** A signed forwarded request (or probe) to `relay`'s peer listener with the given client certificate, verifying the relay's. */
function peerAsk(relay: ClusterRelay, peerKey: Buffer, path: string, client: { cert?: Buffer; key?: Buffer }): Promise<PeerAnswer> {
  const host = path === FRESH_PATH ? `${relay.ip}:${relay.ports.peer}` : 'one.localhost'
  const headers: Record<string, string> = { host }
  for (const [k, v] of signPeerRequest(peerKey, { from: relay.id === 'r1' ? 'r2' : 'r1', visitor: '127.0.0.1', proto: 'http' }, { method: 'GET', host, url: path })) headers[k] = v
  const ca = readFileSync(String((relay.proc.config['cluster'] as { peer_tls: { ca: string } }).peer_tls.ca))
  return new Promise((resolve) => {
    const req = https.get({ host: relay.ip, port: relay.ports.peer, path, headers, agent: false, ca, ...client, servername: '', timeout: 5000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, error: null }))
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', (err) => resolve({ status: 0, body: '', error: err.message }))
  })
}

t.test('freshness probe over mTLS: a relay cut from Redis asks its peer and fails /readyz', async (t) => {
  const pki = await initPki(t)
  const peerCerts = [await issuePeerCert(pki, ['127.0.0.11'], 'peer-r1'), await issuePeerCert(pki, ['127.0.0.12'], 'peer-r2')]
  const redis = await startRedis(t)
  const hop = await startTcpHop(t, { host: '127.0.0.1', port: redis.port })
  const relays = await startCluster(t, { redis, agents: ['one'], count: 2, peerTls: (i) => peerCerts[i]!, redisUrlFor: (i) => (i === 1 ? `redis://127.0.0.1:${hop.port}` : redis.url) })
  const [r1, r2] = [relays[0]!, relays[1]!]
  t.same([await r1.readyz(), await r2.readyz()], [200, 200], 'both ready')
  hop.set('blackhole')
  // Only an answer from r1 over mTLS ({"fresh":true}) makes r2 give up readiness; no answer keeps it ready.
  const ready = await pollUntil(() => r2.readyz(), (s) => s === 503, { timeoutMs: 15_000, intervalMs: 100 })
  t.equal(ready.value, 503, `r2 /readyz fails after its https probe of r1 (${ready.ms} ms after the cut)`)
  // The log line is written as readiness flips; it reaches us through the child's stdout a moment later.
  const said = await pollUntil(async () => r2.proc.logs().some((l) => l['msg'] === 'cut from redis while a peer reaches it: /readyz fails'), (seen) => seen, { timeoutMs: 3_000, intervalMs: 50 })
  t.ok(said.ok, 'r2 says a peer reaches Redis')
  t.equal(await r1.readyz(), 200, 'r1 stays ready')
})
