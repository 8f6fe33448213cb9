// What comes back from behind the agent, against the real relay and agent (SECURITY.md B5, B13,
// F6 (c), F7): a raw TCP origin that lies about framing or sends garbage, and a fake agent that
// writes reply heads no real agent would. Each gets a 502 or a visibly truncated response, and
// both processes keep serving.
import { createHash } from 'node:crypto'
import { createServer, type Socket } from 'node:net'
import t from 'tap'
import { startHttpOrigin } from '../e2e/harness/origins.js'
import { startAgent, startRelay } from '../e2e/harness/processes.js'
import { listenEphemeral } from '../e2e/harness/tcp.js'
import { rawExchange, rawStatus, visit } from '../e2e/harness/visitor.js'
import { FakeAgent, reply } from './helpers/fake-agent.js'

/** Raw responses by request path; each connection answers one request, then the origin closes it. */
const RAW: Record<string, string | Buffer> = {
  '/cl-te': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  '/two-cl': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello!!',
  '/garbage': Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0d, 0x0a, 0x0d, 0x0a, 0x41]),
  '/bad-status': 'HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok',
  '/huge-headers': `HTTP/1.1 200 OK\r\n${Array.from({ length: 64 }, (_, i) => `X-Big-${i}: ${'v'.repeat(1000)}\r\n`).join('')}Content-Length: 2\r\n\r\nok`,
  '/nul-header': 'HTTP/1.1 200 OK\r\nX-Evil: a\x00b\r\nContent-Length: 2\r\n\r\nok',
  '/cut-cl': 'HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n' + 'x'.repeat(30_000),
  '/cut-chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7530\r\n' + 'y'.repeat(30_000) + '\r\n4000\r\nshort',
}
let rawRequests = 0
const rawOrigin = createServer((socket: Socket) => {
  socket.on('error', () => undefined)
  let head = ''
  socket.on('data', (c: Buffer) => {
    head += c.toString('latin1')
    if (!head.includes('\r\n\r\n')) return
    rawRequests++
    const path = head.split(' ')[1] ?? ''
    socket.end(RAW[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n')
  })
})
await listenEphemeral(t, rawOrigin)
const rawPort = (rawOrigin.address() as { port: number }).port

/** [path, X-Forwarded-Host] of every request the node origin got on /hash and /echo-b. */
const seenSites: Array<[string, string]> = []
const origin = await startHttpOrigin(t, {
  '/echo-b': (req, res) => { seenSites.push([req.url ?? '', String(req.headers['x-forwarded-host'])]); res.end('b') },
  '/hash': (req, res) => {
    seenSites.push([req.url ?? '', String(req.headers['x-forwarded-host'])])
    const h = createHash('sha256')
    req.on('data', (c: Buffer) => h.update(c))
    req.on('end', () => res.end(`${h.digest('hex')} trailers=${JSON.stringify(req.trailers)}`))
  },
})
const relay = await startRelay(t, { agents: { laptop: { hosts: ['*.localhost'] }, fake: { hosts: ['fake.localhost'] } } })
const agent = await startAgent(t, relay, {
  tunnels: [{ http: 'raw', to: `http://127.0.0.1:${rawPort}` }, { http: 'a', to: origin.url }, { http: 'b', to: origin.url }],
})

t.test('B5 (a, b): a pipelined chunked POST with trailers, then a GET for another site: each origin gets its exact bytes, answers in order', async (t) => {
  const chunks = ['first chunk ', 'second, longer chunk ', 'third']
  const body = chunks.map((c) => `${c.length.toString(16)}\r\n${c}\r\n`).join('') + '0\r\nX-Sum: 42\r\n\r\n'
  const { response } = await rawExchange(relay.publicPort,
    `POST /hash HTTP/1.1\r\nHost: a.localhost\r\nTransfer-Encoding: chunked\r\n\r\n${body}` +
    'GET /echo-b HTTP/1.1\r\nHost: b.localhost\r\nConnection: close\r\n\r\n')
  const expected = createHash('sha256').update(chunks.join('')).digest('hex')
  const first = response.indexOf(expected)
  const second = response.indexOf('HTTP/1.1', first)
  t.ok(first > 0, 'the POST body arrived byte for byte (sha256)')
  t.ok(second > first, 'the GET answer comes after the POST answer')
  t.equal(rawStatus(response.slice(second)), 200)
  // The two run concurrently (one stream each), so arrival order at the origin may differ.
  t.same([...seenSites].sort(), [['/echo-b', 'b.localhost'], ['/hash', 'a.localhost']], 'each site got only its own request')
})

t.test('B5 (c), F7: CL+TE, two Content-Lengths, garbage, a bad status line, 64 KB of headers, NUL in a header: 502 each; both processes live', async (t) => {
  for (const path of ['/cl-te', '/two-cl', '/garbage', '/bad-status', '/huge-headers', '/nul-header']) {
    const res = await visit(relay.publicPort, { host: 'raw.localhost', path })
    t.equal(res.status, 502, `${path}: 502`)
    t.equal(res.headers['x-porchlight-error'], 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE', `${path}: labelled`)
    t.notMatch(res.text, /hello|127\.0\.0\.1|at .*\.js/, `${path}: nothing of the origin's bytes, no address or stack`)
  }
  t.equal(relay.current.running, true, 'relay alive')
  t.equal(agent.handle.running, true, 'agent alive')
  t.equal((await visit(relay.publicPort, { host: 'a.localhost', path: '/after' })).status, 200, 'and serving')
})

/** Reads a whole raw response; reports whether its framing completed. */
async function framing(path: string): Promise<{ status: number; complete: boolean; bodyBytes: number }> {
  const { response } = await rawExchange(relay.publicPort, `GET ${path} HTTP/1.1\r\nHost: raw.localhost\r\nConnection: close\r\n\r\n`, 5000)
  const split = response.indexOf('\r\n\r\n')
  const head = response.slice(0, split)
  const body = response.slice(split + 4)
  const cl = /\r\ncontent-length: (\d+)/i.exec(head)
  const complete = cl ? body.length === Number(cl[1]) : /\r\n0\r\n\r\n$/.test(body)
  return { status: rawStatus(response), complete, bodyBytes: body.length }
}

t.test('F6 (c): an origin that closes mid-body: the visitor sees a truncated response, never a complete one', async (t) => {
  for (const path of ['/cut-cl', '/cut-chunked']) {
    const r = await framing(path)
    // Whether the agent saw the head before the close decides between the two; both are honest.
    if (r.status === 502) t.pass(`${path}: the origin closed before its head reached the relay: 502`)
    else {
      t.equal(r.status, 200, `${path}: the head had gone out`)
      t.equal(r.complete, false, `${path}: framing incomplete (${r.bodyBytes} body bytes on the wire)`)
    }
  }
})

t.test('B13: reply heads with CR/LF, NUL, a 100 KB value or a relay cookie: 502 or stripped; the relay stays up', async (t) => {
  const fake = await FakeAgent.connect(t, relay.agentsUrl, relay.tokens['fake']!)
  await fake.hello()
  t.match(await fake.publishHttp(['fake.localhost']), [{ ok: true }])
  const heads: Record<string, Array<[string, string]>> = {
    '/crlf-value': [['x-a', 'ok\r\nSet-Cookie: injected=1']],
    '/crlf-name': [['x-a\r\nx-b', 'v']],
    '/nul': [['x-a', 'a\u0000b']],
    '/huge': [['x-a', 'v'.repeat(100 * 1024)]],
    '/cookie': [['set-cookie', '__Host-porchlight_access=attacker; Path=/; Secure'], ['set-cookie', 'porchlight_access=attacker; Domain=localhost'], ['set-cookie', 'theme=dark']],
  }
  fake.answer = (head, stream) => {
    const url = String(head['url'])
    reply(stream, { t: 'response', status: 200, headers: [...(heads[url] ?? []), ['content-length', '2']] }, 'ok')
  }
  for (const path of ['/crlf-value', '/crlf-name', '/nul', '/huge']) {
    const res = await visit(relay.publicPort, { host: 'fake.localhost', path })
    t.equal(res.status, 502, `${path}: 502`)
    t.equal(res.headers['x-porchlight-error'], 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE')
    t.notOk(res.headers['set-cookie'], `${path}: nothing injected`)
  }
  const cookies = await visit(relay.publicPort, { host: 'fake.localhost', path: '/cookie' })
  t.equal(cookies.status, 200)
  t.same(cookies.headers['set-cookie'], ['theme=dark'], 'the relay cookies are stripped, the site cookie passes')
  // The same heads on the upgrade path, which writes its 101/other head by hand.
  fake.answer = (head, stream) => reply(stream, { t: 'response', status: 101, headers: [['upgrade', 'websocket'], ['connection', 'Upgrade'], ['x-a', 'ok\r\nx-injected: 1']] })
  const up = await rawExchange(relay.publicPort, 'GET /ws HTTP/1.1\r\nHost: fake.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  t.equal(rawStatus(up.response), 502, 'upgrade with CR/LF in a reply header: 502')
  t.notMatch(up.response, /x-injected/i)
  t.equal(relay.current.running, true)
})

t.test('F7: the raw origin was reached for every case (the 502s are its answers, not refusals)', async (t) => {
  t.ok(rawRequests >= 8, `${rawRequests} requests reached the raw origin`)
})
