import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { connect } from 'node:net'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { loadClusterKeys } from '../../packages/server/src/cluster/keys.js'
import { signPeerRequest } from '../../packages/server/src/cluster/peer-auth.js'
import { startHttpOrigin, type HttpOrigin } from '../e2e/harness/origins.js'
import { pollUntil } from '../e2e/harness/wait.js'
import { failures, startCluster, startClusterAgent, startRedis, startTcpHop, visit, waitForLinks } from './harness.js'

// Done-when 5: one relay cut from Redis (a blackholed path, no FIN, no RST) fails /readyz within
// 6 s while its peers still reach Redis; open sites keep serving on it; a share link revoked
// meanwhile elsewhere is refused by it (503 past max_staleness) within 5 s, and by 401 once healed.
// WebSocket upgrades follow the same rule: past max_staleness one to the link-protected site gets
// 503 PL_ERR_CLUSTER_REDIS on the public and the peer listener, valid link or not, while the open
// site still upgrades; healed, the link upgrades again.

/** An origin that names its agent and the Host it saw (as harness startEchoOrigin) and echoes WebSocket messages on /ws*. */
function wsEchoOrigin(t: Test, agent: string): Promise<HttpOrigin> {
  return startHttpOrigin(t, {
    '/': (req: IncomingMessage, res: ServerResponse) => {
      const body = JSON.stringify({ agent, host: req.headers['x-forwarded-host'] ?? req.headers.host ?? '' })
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
      res.end(body)
    },
  })
}

interface RawAnswer { statusLine: string; head: string; body: string; closed: boolean }

/**
 * A WebSocket upgrade on a plain TCP connection: what came back, read until the relay closed the
 * connection, a 101 head arrived (then it is closed here), or 5 s passed.
 */
function rawUpgrade(address: string, port: number, path: string, headers: Record<string, string>): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port })
    let got = Buffer.alloc(0)
    const finish = (closed: boolean): void => {
      clearTimeout(timer)
      socket.destroy()
      const text = got.toString('utf8')
      const end = text.indexOf('\r\n\r\n')
      const head = end === -1 ? text : text.slice(0, end)
      resolve({ statusLine: head.split('\r\n')[0] ?? '', head, body: end === -1 ? '' : text.slice(end + 4), closed })
    }
    const timer = setTimeout(() => finish(false), 5_000)
    socket.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c])
      if (got.toString('latin1').startsWith('HTTP/1.1 101 ') && got.includes('\r\n\r\n')) finish(false)
    })
    socket.on('close', () => finish(true))
    socket.on('error', () => undefined)
    const all = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64'), ...headers }
    socket.write(`GET ${path} HTTP/1.1\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`)
  })
}

/** Upgrades with the ws client, sends each message and resolves with the echoes (hex) and 101, or the refusal's status. */
function wsEcho(url: string, host: string, cookie: string | null, messages: Array<string | Buffer>): Promise<{ status: number; echoed: string[] }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers: { host, ...(cookie !== null ? { cookie } : {}) }, perMessageDeflate: false, handshakeTimeout: 5_000 })
    const echoed: string[] = []
    const done = (status: number): void => {
      clearTimeout(timer)
      resolve({ status, echoed })
    }
    // Bounded: echoes still missing after 5 s resolve with what came (status 0).
    const timer = setTimeout(() => { ws.terminate(); done(0) }, 5_000)
    ws.once('unexpected-response', (_req, res) => {
      res.resume()
      done(res.statusCode ?? 0)
    })
    ws.once('error', () => done(0))
    ws.once('open', () => {
      ws.on('message', (data: Buffer) => {
        echoed.push(Buffer.from(data).toString('hex'))
        if (echoed.length === messages.length) {
          ws.close()
          done(101)
        }
      })
      for (const m of messages) ws.send(m)
    })
  })
}

const hex = (messages: Array<string | Buffer>): string[] => messages.map((m) => Buffer.from(m).toString('hex'))

t.test('one relay cut from Redis: /readyz 503 within 6 s, open sites serve, revoked links refused', async (t) => {
  const redis = await startRedis(t)
  const hop = await startTcpHop(t, { host: '127.0.0.1', port: redis.port })
  const relays = await startCluster(t, { redis, agents: ['one', 'two'], redisUrlFor: (i) => (i === 2 ? `redis://127.0.0.1:${hop.port}` : redis.url) })
  const [r1, , r3] = [relays[0]!, relays[1]!, relays[2]!]
  const origins = await Promise.all(['one', 'two'].map((a) => wsEchoOrigin(t, a)))
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
  // Never revoked: its cookie opens the site whenever r3's state is fresh.
  const kept = await createLink()
  const keptCookie = `porchlight_access=${kept.token}`
  const messages = ['through r3', Buffer.from([0, 1, 2, 0xfd, 0xfe, 0xff])]

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

  // Upgrades while r3 is past max_staleness: refused for the protected site (the valid link too), on
  // r3's public listener and on its peer listener (a signed forward from r1), before any origin.
  const upgradesBefore = origins[0]!.upgrades.length
  const stalePublic = await rawUpgrade(r3.ip, r3.ports.public, '/ws/cut', { host: 'one.localhost', cookie: keptCookie })
  t.same([stalePublic.statusLine, stalePublic.closed], ['HTTP/1.1 503 Service unavailable', true], 'protected site, valid link: upgrade refused with 503 and closed (public listener)')
  t.match(stalePublic.head, /\r\nx-porchlight-error: PL_ERR_CLUSTER_REDIS\r\n/, 'with the error header')
  t.match(stalePublic.body, /shared state.*\(PL_ERR_CLUSTER_REDIS\)/, 'and PL_ERR_CLUSTER_REDIS in the body')
  const keys = loadClusterKeys(String((readFileSync(r3.proc.configFile, 'utf8').match(/secret_file: (\S+)/) ?? [])[1]))
  const signedUpgrade = (path: string): Promise<RawAnswer> => rawUpgrade(r3.ip, r3.ports.peer, path, {
    host: 'one.localhost', cookie: keptCookie,
    ...Object.fromEntries(signPeerRequest(keys.peer, { from: 'r1', visitor: '127.0.0.1', proto: 'http' }, { method: 'GET', host: 'one.localhost', url: path })),
  })
  const stalePeer = await signedUpgrade('/ws/cut-peer')
  t.same([stalePeer.statusLine, stalePeer.closed], ['HTTP/1.1 503 Service unavailable', true], 'the same upgrade forwarded to r3\'s peer listener: 503 and closed')
  t.match(stalePeer.body, /\(PL_ERR_CLUSTER_REDIS\)/, 'with PL_ERR_CLUSTER_REDIS')
  t.equal(origins[0]!.upgrades.length, upgradesBefore, 'neither reached the protected site\'s origin')
  const openUpgrade = await wsEcho(`ws://${r3.ip}:${r3.ports.public}/ws/open`, 'two.localhost', null, messages)
  t.same(openUpgrade, { status: 101, echoed: hex(messages) }, 'the open site upgrades on r3 and echoes byte for byte')

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
  const healed = await wsEcho(`ws://${r3.ip}:${r3.ports.public}/ws/healed`, 'one.localhost', keptCookie, messages)
  t.same(healed, { status: 101, echoed: hex(messages) }, 'healed: the protected site upgrades on r3 with the kept link and echoes')
  const healedPeer = await signedUpgrade('/ws/healed-peer')
  t.match(healedPeer.statusLine, /^HTTP\/1\.1 101 /, 'and a signed upgrade on r3\'s peer listener is served')
  t.equal(origins[0]!.upgrades.length, upgradesBefore + 2, 'both reached the origin')
})
