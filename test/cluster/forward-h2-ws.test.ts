import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import http2 from 'node:http2'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { loadClusterKeys } from '../../packages/server/src/cluster/keys.js'
import { signPeerRequest } from '../../packages/server/src/cluster/peer-auth.js'
import { startHttpOrigin } from '../e2e/harness/origins.js'
import { initPki, issuePeerCert, issueSiteCert } from '../e2e/harness/pki.js'
import { startAgent } from '../e2e/harness/processes.js'
import { pollUntil } from '../e2e/harness/wait.js'
import { startCluster, startRedis, waitForLinks, type ClusterRelay } from './harness.js'

// A relay with no healthy link for a host forwards HTTP/2 requests (over HTTP/1.1 to the peer
// listener) and WebSocket upgrades (signed, then piped both ways after the peer's 101) to the
// peer that has one; the site's access rules run there with the visitor's address.

interface H2Answer { status: number; headers: http2.IncomingHttpHeaders; body: string }

function h2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body: Buffer[] = []): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body.length === 0 })
    let status = 0
    let got: http2.IncomingHttpHeaders = {}
    const chunks: Buffer[] = []
    req.on('response', (h) => { got = h; status = Number(h[':status']) })
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve({ status, headers: got, body: Buffer.concat(chunks).toString('utf8') }))
    req.on('error', reject)
    // Several DATA frames and no content-length: the relay must send the peer a chunked body.
    for (const chunk of body) req.write(chunk)
    if (body.length > 0) req.end()
  })
}

interface Upgraded { status: number; ws: WebSocket | null; error: string | null }

function upgrade(url: string, headers: Record<string, string>, opts: WebSocket.ClientOptions & { servername?: string } = {}): Promise<Upgraded> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false, handshakeTimeout: 10_000, ...opts })
    ws.once('unexpected-response', (_req, res) => {
      res.resume()
      resolve({ status: res.statusCode ?? 0, ws: null, error: String(res.headers['x-porchlight-error'] ?? '') })
    })
    ws.once('open', () => resolve({ status: 101, ws, error: null }))
    ws.once('error', (err) => resolve({ status: 0, ws: null, error: err.message }))
  })
}

/** Sends each message and collects as many echoes, in order. */
function echoes(ws: WebSocket, messages: Array<string | Buffer>): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = []
    ws.on('message', (data: Buffer) => {
      got.push(Buffer.from(data))
      if (got.length === messages.length) resolve(got)
    })
    ws.once('error', reject)
    for (const m of messages) ws.send(m)
  })
}

/**
 * Two relays with one agent (sites one, locked with share links, office with an IP allow-list)
 * whose link to r2 is cut: everything through r2 must go to r1. `peerTls`: listen.peer with mTLS.
 */
async function linkedOnlyToR1(t: Test, opts: { peerTls?: boolean } = {}) {
  const pki = await initPki(t)
  const names = ['one.localhost', 'locked.localhost', 'office.localhost']
  const site = await issueSiteCert(pki, names)
  const ca = readFileSync(pki.caCert)
  const peerCerts = opts.peerTls === true ? [await issuePeerCert(pki, ['127.0.0.11'], 'peer-r1'), await issuePeerCert(pki, ['127.0.0.12'], 'peer-r2')] : []
  const redis = await startRedis(t)
  const relays = await startCluster(t, {
    redis, agents: ['one'], hosts: { one: names }, count: 2, agentsHops: [1], publicTls: { certs: [site] },
    ...(opts.peerTls === true ? { peerTls: (i: number) => peerCerts[i]! } : {}),
  })
  const [r1, r2] = [relays[0]!, relays[1]!]
  const state = { hanging: 0 }
  const origin = await startHttpOrigin(t, {
    // Names the agent and what it saw; answered without a content-length (chunked from the origin).
    '/who': (req, res) => {
      const hash = createHash('sha256')
      let bytes = 0
      req.on('data', (c: Buffer) => { bytes += c.length; hash.update(c) })
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'x-origin': 'one' })
        res.end(JSON.stringify({ agent: 'one', host: req.headers['x-forwarded-host'], proto: req.headers['x-forwarded-proto'], xff: req.headers['x-forwarded-for'], method: req.method, bytes, sha256: hash.digest('hex'), cookie: req.headers.cookie ?? null }))
      })
    },
    '/hang': (req) => {
      state.hanging++
      req.on('close', () => { state.hanging-- })
    },
  })
  const agent = await startAgent(t, r1.proc, {
    name: 'one',
    tunnels: [
      { http: 'one', to: origin.url },
      { http: 'locked', to: origin.url, access: { links: true } },
      { http: 'office', to: origin.url, access: { allow_ips: ['127.0.0.1'] } },
    ],
    extra: { relay: r1.agentsUrl, inspect: '127.0.0.1:0' },
    env: { PORCHLIGHT_BACKOFF_MAX_MS: '500' },
  })
  t.ok((await waitForLinks(relays, ['one'], 10_000)).ok, 'linked to both relays')
  // Peers learn which hosts a member serves from its heartbeat: one to write it, one to read it.
  await new Promise((r) => setTimeout(r, 2_500))
  r2.agentsHop!.set('reset')
  t.ok((await pollUntil(() => r2.linksOf('one'), (n) => n === 0, { timeoutMs: 10_000 })).ok, 'r2 lost its link')

  const tlsPort = r2.ports.public_tls
  const h2Session = (relay: ClusterRelay): http2.ClientHttp2Session => {
    const s = http2.connect(`https://${relay.ip}:${tlsPort}`, { ca, servername: 'one.localhost' })
    s.on('error', () => undefined)
    t.teardown(() => s.destroy())
    return s
  }
  return {
    pki, ca, r1, r2, origin, agent, state, tlsPort, peerCerts, h2Session,
    authority: `one.localhost:${tlsPort}`,
    wsUrl: (relay: ClusterRelay, path: string): string => `ws://${relay.ip}:${relay.ports.public}${path}`,
  }
}

t.test('no local link: HTTP/2 requests and WebSocket upgrades are served through the peer that has one', async (t) => {
  const { ca, r1, r2, origin, agent, state, tlsPort, authority, h2Session, wsUrl } = await linkedOnlyToR1(t)

  await t.test('(a) HTTP/2 through r2: GET and a POST without content-length', async (t) => {
    const session = h2Session(r2)
    const get = await h2Request(session, { ':method': 'GET', ':path': '/who?x=1', ':authority': authority, cookie: 'a=1' })
    t.equal(get.status, 200, 'served')
    t.equal(get.headers['x-origin'], 'one', 'the origin\'s header reached the h2 visitor')
    t.notOk('transfer-encoding' in get.headers || 'connection' in get.headers, 'no connection-specific header on h2')
    const seen = JSON.parse(get.body) as Record<string, unknown>
    t.same([seen['agent'], seen['host'], seen['proto'], seen['method'], seen['xff']], ['one', 'one.localhost', 'https', 'GET', '127.0.0.1'], 'r1\'s agent served it for the visitor\'s Host, scheme and address')

    const body = [randomBytes(40_000), randomBytes(70_000), Buffer.from('end')]
    const post = await h2Request(session, { ':method': 'POST', ':path': '/who', ':authority': authority, 'content-type': 'application/octet-stream' }, body)
    t.equal(post.status, 200, 'POST served')
    const posted = JSON.parse(post.body) as Record<string, unknown>
    t.same([posted['method'], posted['bytes'], posted['sha256']], ['POST', 110_003, createHash('sha256').update(Buffer.concat(body)).digest('hex')], 'the whole body arrived (sha256)')

    // Split cookie crumbs (RFC 9113 8.2.3) reach the origin as one Cookie header.
    const crumbs = await h2Request(session, { ':method': 'GET', ':path': '/who', ':authority': authority, cookie: ['a=1', 'b=2'] })
    t.equal((JSON.parse(crumbs.body) as { cookie: string }).cookie, 'a=1; b=2', 'cookies joined for HTTP/1.1')

    t.equal(await r2.linksOf('one'), 0, 'r2 still has no link: these were forwarded')
    const served = await pollUntil(async () => r1.proc.accessLogs().filter((l) => l['host'] === 'one.localhost' && String(l['url']).startsWith('/who')).length, (n) => n >= 3, { timeoutMs: 5_000 })
    t.ok(served.ok, `r1 served them (${served.value} access log lines)`)
    t.ok(r2.proc.logs().every((l) => l['code'] !== 'PL_ERR_CLUSTER_PEER'), 'no forward failed')
  })

  await t.test('(a) an h2 stream the visitor resets ends the origin request behind the peer', async (t) => {
    const session = h2Session(r2)
    const req = session.request({ ':method': 'GET', ':path': '/hang', ':authority': authority })
    req.on('error', () => undefined)
    t.ok((await pollUntil(async () => state.hanging, (n) => n === 1, { timeoutMs: 5_000 })).ok, 'the request reached the origin through r1')
    req.close(http2.constants.NGHTTP2_CANCEL)
    const gone = await pollUntil(async () => state.hanging, (n) => n === 0, { timeoutMs: 10_000 })
    t.ok(gone.ok, `RST_STREAM at r2 closed the origin request (${gone.ms} ms)`)
  })

  await t.test('(b) WebSocket through r2 (ws:// and wss://) echoes both ways', async (t) => {
    const before = origin.upgrades.length
    const up = await upgrade(wsUrl(r2, '/ws/live'), { host: 'one.localhost' })
    t.equal(up.status, 101, `upgraded (${up.error ?? ''})`)
    const big = randomBytes(300_000)
    const messages = ['hello', Buffer.from([0, 1, 2, 253, 254, 255]), 'tschüss ✓', big]
    const got = await echoes(up.ws!, messages)
    t.same(got.map((b) => b.toString('hex')), messages.map((m) => Buffer.from(m).toString('hex')), 'every message echoed byte for byte, in order')
    up.ws!.close()
    t.equal(origin.upgrades.length, before + 1, 'one upgrade reached the origin')
    t.equal(origin.upgrades.at(-1)!['x-forwarded-for'], '127.0.0.1', 'with the visitor\'s address')

    const secure = await upgrade(`wss://${r2.ip}:${tlsPort}/ws/tls`, { host: authority }, { ca, servername: 'one.localhost' })
    t.equal(secure.status, 101, `upgraded over TLS (${secure.error ?? ''})`)
    t.same((await echoes(secure.ws!, ['over tls']))[0]!.toString(), 'over tls', 'echoed over wss://')
    secure.ws!.close()
    t.equal(origin.upgrades.at(-1)!['x-forwarded-proto'], 'https', 'the TLS listener\'s scheme reached the origin')
    t.equal(await r2.linksOf('one'), 0, 'forwarded: r2 has no link')
  })

  await t.test('(c) access rules at the owning relay: share link and IP allow-list', async (t) => {
    const inspect = String(agent.logs().find((l) => l['msg'] === 'status API listening')?.['inspect'])
    const created = await fetch(`http://${inspect}/api/links`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ host: 'locked', expires: '1h' }) })
    t.equal(created.status, 201, 'share link created')
    const token = new URL(String(((await created.json()) as { url: string }).url)).searchParams.get('porchlight_share') ?? ''
    const before = origin.upgrades.length
    const refused = await upgrade(wsUrl(r2, '/ws/locked'), { host: 'locked.localhost' })
    t.same([refused.status, refused.error], [401, 'PL_ERR_ACCESS_UNAUTHORIZED'], 'no link: 401, as the site answers locally')
    const forged = await upgrade(wsUrl(r2, '/ws/locked'), { host: 'locked.localhost', cookie: `porchlight_access=${token.slice(0, -4)}AAAA` })
    t.equal(forged.status, 401, 'a tampered link: 401')
    t.equal(origin.upgrades.length, before, 'neither reached the origin')
    const allowed = await upgrade(wsUrl(r2, '/ws/locked'), { host: 'locked.localhost', cookie: `porchlight_access=${token}` })
    t.equal(allowed.status, 101, 'with the link: upgraded')
    t.same((await echoes(allowed.ws!, ['shared']))[0]!.toString(), 'shared', 'echoed behind the share link')
    allowed.ws!.close()
    t.notMatch(JSON.stringify(origin.upgrades.at(-1)), /porchlight_access/, 'the relay cookie never reached the origin')

    const outsider = await upgrade(wsUrl(r2, '/ws/office'), { host: 'office.localhost' }, { localAddress: '127.0.0.2' })
    t.equal(outsider.status, 403, 'allow_ips: a visitor from 127.0.0.2 is refused at r1 (its real address travelled)')
    const insider = await upgrade(wsUrl(r2, '/ws/office'), { host: 'office.localhost' }, { localAddress: '127.0.0.1' })
    t.equal(insider.status, 101, 'from 127.0.0.1: upgraded')
    insider.ws?.close()
  })

  await t.test('(d) an upgrade to the peer listener without a valid signature: 401, no origin', async (t) => {
    const keys = loadClusterKeys(String((readFileSync(r1.proc.configFile, 'utf8').match(/secret_file: (\S+)/) ?? [])[1]))
    const before = origin.upgrades.length
    const peerUpgrade = (sig: 'none' | 'bad' | 'good'): Promise<number> => new Promise((resolve) => {
      const headers: Record<string, string> = { host: 'one.localhost', connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64') }
      const signed = signPeerRequest(keys.peer, { from: 'r2', visitor: '127.0.0.1', proto: 'http' }, { method: 'GET', host: 'one.localhost', url: '/ws/peer' })
      for (const [k, v] of signed) headers[k] = sig === 'bad' && k === 'x-porchlight-peer-sig' ? 'A'.repeat(v.length) : v
      if (sig === 'none') for (const [k] of signed) delete headers[k]
      const req = http.request({ host: r1.ip, port: r1.ports.peer, path: '/ws/peer', headers, agent: false, timeout: 5000 })
      req.on('response', (res) => { res.resume(); resolve(res.statusCode ?? 0) })
      req.on('upgrade', (_res, socket) => { socket.destroy(); resolve(101) })
      req.on('timeout', () => req.destroy())
      req.on('error', () => resolve(0))
      req.end()
    })
    t.equal(await peerUpgrade('bad'), 401, 'a bad signature: 401')
    t.equal(await peerUpgrade('none'), 404, 'no peer headers: 404')
    t.equal(origin.upgrades.length, before, 'neither reached the origin')
    t.equal(await peerUpgrade('good'), 101, 'a signed one is served over r1\'s link')
    t.equal(origin.upgrades.length, before + 1, 'that one reached the origin')
  })

  await t.test('(e) the peer unreachable, then no peer at all: h2 and upgrades get 503', async (t) => {
    const mark = r2.proc.logs().length
    r1.signal('SIGKILL')
    // r2 still lists r1 for up to its heartbeat TTL: the forward fails and r2 answers itself.
    const h2 = await h2Request(h2Session(r2), { ':method': 'GET', ':path': '/who', ':authority': authority })
    t.equal(h2.status, 503, 'h2 request: 503 from r2')
    const up = await upgrade(wsUrl(r2, '/ws/live'), { host: 'one.localhost' })
    t.same([up.status, up.error], [503, 'PL_ERR_HTTP_TUNNEL_OFFLINE'], 'upgrade: 503 offline from r2')
    // (The log lines may reach the test a moment after the answers.)
    const failed = await pollUntil(async () => r2.proc.logs().slice(mark).filter((l) => l['code'] === 'PL_ERR_CLUSTER_PEER').map((l) => String(l['msg'])), (m) => m.includes('forward to peer failed') && m.includes('upgrade to peer failed'), { timeoutMs: 3_000 })
    t.ok(failed.ok, `both tried r1 first (${failed.value.join(', ')})`)

    const alone = await pollUntil(async () => r2.proc.logs().slice(mark).some((l) => l['msg'] === 'cluster members' && Array.isArray(l['members']) && l['members'].length === 1), (v) => v, { timeoutMs: 10_000 })
    t.ok(alone.ok, 'r2 no longer lists r1')
    const h2Again = await h2Request(h2Session(r2), { ':method': 'GET', ':path': '/who', ':authority': authority })
    t.equal(h2Again.status, 503, 'no peer: h2 request 503')
    const upAgain = await upgrade(wsUrl(r2, '/ws/live'), { host: 'one.localhost' })
    t.equal(upAgain.status, 503, 'no peer: upgrade 503')
  })
})

t.test('with peer_tls: forwarded over mTLS; an upgrade without a client certificate gets 401', async (t) => {
  const { r1, r2, origin, peerCerts, authority, h2Session, wsUrl } = await linkedOnlyToR1(t, { peerTls: true })
  const get = await h2Request(h2Session(r2), { ':method': 'GET', ':path': '/who', ':authority': authority })
  t.same([get.status, (JSON.parse(get.body) as { agent: string }).agent], [200, 'one'], 'h2 through r2, served by r1 over mTLS')
  const up = await upgrade(wsUrl(r2, '/ws/tls-peer'), { host: 'one.localhost' })
  t.equal(up.status, 101, `upgrade through r2 over mTLS (${up.error ?? ''})`)
  t.same((await echoes(up.ws!, ['via mtls', Buffer.from([9, 8, 7])])).map((b) => b.toString('hex')), [Buffer.from('via mtls').toString('hex'), '090807'], 'echoed both ways')
  up.ws!.close()

  // A valid signature but no client certificate on r1's peer listener: refused before any handler.
  const keys = loadClusterKeys(String((readFileSync(r1.proc.configFile, 'utf8').match(/secret_file: (\S+)/) ?? [])[1]))
  const before = origin.upgrades.length
  const peerCa = readFileSync(peerCerts[0]!.ca)
  const attempt = (client: { cert?: Buffer; key?: Buffer }): Promise<number> => new Promise((resolve) => {
    const headers: Record<string, string> = { host: 'one.localhost', connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64') }
    for (const [k, v] of signPeerRequest(keys.peer, { from: 'r2', visitor: '127.0.0.1', proto: 'http' }, { method: 'GET', host: 'one.localhost', url: '/ws/peer' })) headers[k] = v
    const req = https.request({ host: r1.ip, port: r1.ports.peer, path: '/ws/peer', headers, agent: false, ca: peerCa, servername: '', ...client, timeout: 5000 })
    req.on('response', (res) => { res.resume(); resolve(res.statusCode ?? 0) })
    req.on('upgrade', (_res, socket) => { socket.destroy(); resolve(101) })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(0))
    req.end()
  })
  t.equal(await attempt({}), 401, 'no client certificate: 401 despite the signature')
  t.equal(origin.upgrades.length, before, 'nothing reached the origin')
  t.equal(await attempt({ cert: readFileSync(peerCerts[1]!.cert), key: readFileSync(peerCerts[1]!.key) }), 101, 'r2\'s certificate and the signature: upgraded')
  t.equal(origin.upgrades.length, before + 1, 'that one reached the origin')
})
