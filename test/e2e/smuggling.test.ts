// Raw bytes against the public listener (SECURITY B4, B9, E8): every ambiguous framing gets 400
// and a close with nothing forwarded, pipelined requests keep their order and their sites apart,
// a refused upgrade takes the request smuggled behind it down with it, and compressed bodies pass
// through byte for byte (the relay never inflates).
import { createHash } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import type { IncomingMessage, ServerResponse } from 'node:http'
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { runCli, startAgent, startRelay } from './harness/processes.js'
import { rawExchange, rawStatus, visit } from './harness/visitor.js'

const GZIPPED = gzipSync(Buffer.alloc(4 * 1024 * 1024, 'a'))
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

// Each site's origin answers with its own name, so mixed-up responses would show.
const site = (name: string): Record<string, (req: IncomingMessage, res: ServerResponse) => void> => ({
  '/who': (req, res) => { req.resume(); res.end(`${name} ${req.url}`) },
  '/gzip': (req, res) => { req.resume(); res.writeHead(200, { 'content-encoding': 'gzip', 'content-type': 'text/plain' }); res.end(GZIPPED) },
})
const originA = await startHttpOrigin(t, site('a'))
const originB = await startHttpOrigin(t, site('b'))
const relay = await startRelay(t)
const hashed = await runCli('agent', ['hash-password', '--password-stdin'], { input: 'a long enough password' })
await startAgent(t, relay, {
  tunnels: [
    { http: 'a', to: originA.url },
    { http: 'b', to: originB.url },
    { http: 'locked', to: originB.url, access: { basic: { user: 'alice', password_hash: hashed.stdout.trim() } } },
  ],
})
const arrivals = (): number => originA.requestCount + originB.requestCount

const AMBIGUOUS: Array<[string, string]> = [
  ['CL and TE together', 'POST /who HTTP/1.1\r\nHost: a.localhost\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG'],
  ['two Content-Length values', 'POST /who HTTP/1.1\r\nHost: a.localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'],
  ['TE chunked, identity', 'POST /who HTTP/1.1\r\nHost: a.localhost\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n'],
  ['TE xchunked', 'POST /who HTTP/1.1\r\nHost: a.localhost\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n'],
  ['TE pigeons', 'POST /who HTTP/1.1\r\nHost: a.localhost\r\nTransfer-Encoding: pigeons\r\n\r\n0\r\n\r\n'],
  ['obs-fold TE', 'POST /who HTTP/1.1\r\nHost: a.localhost\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n'],
  ['CL +5', 'POST /who HTTP/1.1\r\nHost: a.localhost\r\nContent-Length: +5\r\n\r\nhello'],
  ['CL "4 2"', 'POST /who HTTP/1.1\r\nHost: a.localhost\r\nContent-Length: 4 2\r\n\r\nhello'],
  ['CL 0x5', 'POST /who HTTP/1.1\r\nHost: a.localhost\r\nContent-Length: 0x5\r\n\r\nhello'],
  ['empty CL', 'POST /who HTTP/1.1\r\nHost: a.localhost\r\nContent-Length:\r\n\r\n'],
  ['bare CR in a header value', 'GET /who HTTP/1.1\r\nHost: a.localhost\r\nX-A: one\rtwo\r\n\r\n'],
  ['two Host headers', 'GET /who HTTP/1.1\r\nHost: a.localhost\r\nHost: b.localhost\r\n\r\n'],
]

t.test('ambiguous framing: 400 and a close for every case; nothing reaches an origin, not even a smuggled GET', async t => {
  const before = arrivals()
  for (const [name, bytes] of AMBIGUOUS) {
    // A plain GET rides behind each case: if the relay misread the framing it would be forwarded.
    const res = await rawExchange(relay.publicPort, `${bytes}GET /who?smuggled HTTP/1.1\r\nHost: a.localhost\r\n\r\n`)
    t.equal(rawStatus(res.response), 400, `${name}: 400`)
    t.ok(res.closedByServer, `${name}: connection closed`)
    t.equal((res.response.match(/HTTP\/1\.1 \d{3} /g) ?? []).length, 1, `${name}: exactly one response`)
  }
  t.equal(arrivals(), before, 'the origins saw none of it')
})

t.test('a chunked body that breaks its framing mid-way: 400, the origin request is reset, nothing behind it is forwarded', async t => {
  const completed = originA.requests.length
  const res = await rawExchange(relay.publicPort, 'POST /who?junk HTTP/1.1\r\nHost: a.localhost\r\nTransfer-Encoding: chunked\r\n\r\n2 junk\r\nab\r\n0\r\n\r\nGET /who?smuggled-after-junk HTTP/1.1\r\nHost: a.localhost\r\n\r\n')
  t.equal(rawStatus(res.response), 400, 'chunk size "2 junk": 400')
  t.ok(res.closedByServer, 'connection closed')
  t.equal((res.response.match(/HTTP\/1\.1 \d{3} /g) ?? []).length, 1, 'exactly one response')
  // The head was valid, so the request had started towards the origin; its body never completes.
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(originA.requests.length, completed, 'no request completed at the origin')
  t.notOk([...originA.requests, ...originB.requests].some(r => r.url.includes('smuggled')), 'no smuggled request was ever forwarded')
})

t.test('100 pipelined requests in one write: answered in order, each by its own site', async t => {
  const before = { a: originA.requestCount, b: originB.requestCount }
  const hosts = ['a', 'nope', 'locked', 'b']
  let bytes = ''
  for (let i = 0; i < 100; i++) bytes += `GET /who?n=${i} HTTP/1.1\r\nHost: ${hosts[i % 4]}.localhost\r\n\r\n`
  bytes += 'GET /who?last HTTP/1.1\r\nHost: a.localhost\r\nConnection: close\r\n\r\n'
  const res = await rawExchange(relay.publicPort, bytes, 10_000)
  const statuses = [...res.response.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map(m => Number(m[1]))
  const want = Array.from({ length: 100 }, (_, i) => [200, 404, 401, 200][i % 4]!).concat(200)
  t.same(statuses, want, '101 responses in request order: 200, 404, 401, 200, ...')
  const bodies = [...res.response.matchAll(/\r\n\r\n([ab]) \/who\?(n=\d+|last)/g)].map(m => `${m[1]} ${m[2]}`)
  const wantBodies = Array.from({ length: 100 }, (_, i) => i).filter(i => i % 4 === 0 || i % 4 === 3).map(i => `${i % 4 === 0 ? 'a' : 'b'} n=${i}`).concat('a last')
  t.same(bodies, wantBodies, 'each answer comes from its own site, for its own request')
  t.equal(originA.requestCount - before.a, 26, 'site a got its 25 + 1')
  t.equal(originB.requestCount - before.b, 25, 'site b got its 25; the locked site (same origin) none')
})

t.test('a refused upgrade closes the connection; the request written behind it reaches no origin', async t => {
  const before = arrivals()
  const res = await rawExchange(relay.publicPort,
    'GET /ws HTTP/1.1\r\nHost: locked.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n' +
    'GET /who?behind-upgrade HTTP/1.1\r\nHost: a.localhost\r\n\r\n')
  t.equal(rawStatus(res.response), 401, 'the upgrade without credentials: 401')
  t.match(res.response, /connection: close/i)
  t.ok(res.closedByServer, 'and the relay closed the connection')
  t.equal((res.response.match(/HTTP\/1\.1 \d{3} /g) ?? []).length, 1, 'one response only')
  t.equal(arrivals(), before, 'the trailing GET was never forwarded')
})

t.test('gzip bodies pass through unchanged both ways: the relay never inflates', async t => {
  const down = await visit(relay.publicPort, { host: 'a.localhost', path: '/gzip', headers: { 'accept-encoding': 'gzip' } })
  t.equal(down.status, 200)
  t.equal(down.headers['content-encoding'], 'gzip')
  t.equal(sha256(down.body), sha256(GZIPPED), `the visitor got the ${GZIPPED.length} compressed bytes as sent`)
  const up = await visit(relay.publicPort, { host: 'a.localhost', method: 'POST', path: '/upload', headers: { 'content-encoding': 'gzip' }, body: GZIPPED })
  const seen = JSON.parse(up.text) as { bytes: number; sha256: string }
  t.same(seen, { bytes: GZIPPED.length, sha256: sha256(GZIPPED) }, 'the origin got the compressed upload as sent')
})

// SECURITY B10 (c, d, e): h2c and unknown upgrades, an origin answering 200 to a WebSocket upgrade.
t.test('upgrades: h2c and unknown protocols are not tunnelled; an origin that refuses a WebSocket leaves the connection in HTTP and closes it', async t => {
  const before = arrivals()
  for (const [name, headers] of [
    ['h2c', 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n'],
    ['foo', 'Connection: Upgrade\r\nUpgrade: foo\r\n'],
  ] as const) {
    const res = await rawExchange(relay.publicPort, `GET /who?${name} HTTP/1.1\r\nHost: a.localhost\r\n${headers}\r\nPRI * HTTP/2.0\r\n\r\n`)
    t.equal(rawStatus(res.response), 400, `Upgrade: ${name} gets 400`)
    t.notMatch(res.response, /101 Switching/, `${name}: never 101`)
    t.ok(res.closedByServer, `${name}: connection closed`)
  }
  t.equal(arrivals(), before, 'neither reached an origin')

  // The harness origin answers 404 to an upgrade outside /ws: the relay must pass that on as
  // plain HTTP and close, and the bytes written behind the upgrade must not reach the origin.
  const refused = await rawExchange(relay.publicPort,
    'GET /not-ws HTTP/1.1\r\nHost: a.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n' +
    'GET /who?after-refused-upgrade HTTP/1.1\r\nHost: a.localhost\r\n\r\n')
  t.equal(rawStatus(refused.response), 404, 'the origin refused the upgrade with 404, passed on as is')
  t.notMatch(refused.response, /101 Switching/)
  t.ok(refused.closedByServer, 'and the connection was closed')
  t.equal(arrivals(), before + 1, 'only the upgrade attempt reached the origin')
  t.notOk([...originA.requests, ...originB.requests].some(r => r.url.includes('after-refused-upgrade')), 'the bytes behind it were never forwarded')
})
