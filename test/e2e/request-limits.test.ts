// What the relay refuses before a request reaches an agent: bodies over `limits.max_body_bytes`
// (SECURITY E4), more header lines than it reads (B6), an `Expect: 100-continue` body to a
// protected site before access was checked (B14), and clients too slow with their headers (B7) or
// their body (B8).
import { connect } from 'node:net'
import { Readable } from 'node:stream'
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { runCli, startAgent, startRelay } from './harness/processes.js'
import { rawExchange, rawStatus, visit } from './harness/visitor.js'

const MiB = 1024 * 1024
const PASSWORD = 'correct horse battery staple'

const origin = await startHttpOrigin(t)
// Short timeouts so the slow-client cases below finish in seconds.
const relay = await startRelay(t, { limits: { max_body_bytes: MiB, headers_timeout_ms: 1000, request_timeout_ms: 2000 } })
const hashed = await runCli('agent', ['hash-password', '--password-stdin'], { input: PASSWORD })
await startAgent(t, relay, {
  tunnels: [
    { http: 'open', to: origin.url },
    { http: 'team', to: origin.url, access: { basic: { user: 'alice', password_hash: hashed.stdout.trim() } } },
  ],
})
const credentials = Buffer.from(`alice:${PASSWORD}`).toString('base64')

/** Bytes the origin was sent, whatever the request: its counter of arrivals and the completed bodies. */
function originSaw(): { arrivals: number; bodyBytes: number } {
  return { arrivals: origin.requestCount, bodyBytes: origin.requests.reduce((n, r) => n + r.bodyBytes, 0) }
}

/** Sends a request head, then returns everything the relay wrote within waitMs (or until it closed). */
function headThenListen(head: string, waitMs: number): Promise<{ text: string; socket: ReturnType<typeof connect> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(relay.publicPort, '127.0.0.1')
    let text = ''
    socket.on('data', (c: Buffer) => { text += c.toString('latin1') })
    socket.once('error', reject)
    socket.write(head)
    setTimeout(() => resolve({ text, socket }), waitMs)
  })
}

t.test('max_body_bytes: a declared or chunked body over the limit gets 413 and never reaches the origin whole', async t => {
  const before = originSaw()
  const completedBefore = origin.requests.length
  const declared = await visit(relay.publicPort, { host: 'open.localhost', method: 'PUT', path: '/upload', body: Buffer.alloc(2 * MiB, 1) })
  t.equal(declared.status, 413, 'Content-Length over the limit: 413')
  t.match(declared.text, /PL_ERR_HTTP_BODY_TOO_LARGE/)
  t.equal(declared.headers.connection, 'close', 'and the connection closes')
  t.same(originSaw(), before, 'the origin saw nothing of it')

  const chunked = await visit(relay.publicPort, { host: 'open.localhost', method: 'PUT', path: '/upload', body: Readable.from([Buffer.alloc(MiB, 2), Buffer.alloc(MiB, 3)]) })
  t.equal(chunked.status, 413, 'chunked body over the limit: 413')
  t.match(chunked.text, /PL_ERR_HTTP_BODY_TOO_LARGE/)
  t.equal(origin.requests.length, completedBefore, 'no upload completed at the origin (its request was reset)')

  const fits = await visit(relay.publicPort, { host: 'open.localhost', method: 'PUT', path: '/upload', body: Buffer.alloc(MiB, 4) })
  t.equal(fits.status, 200, 'exactly the limit is accepted')
  t.equal((JSON.parse(fits.text) as { bytes: number }).bytes, MiB, 'and arrives whole')
})

t.test('more than 200 header lines, or 20 KB of one header: 431, nothing forwarded, the next visitor is served', async t => {
  const before = originSaw().arrivals
  const many = Array.from({ length: 2001 }, (_, i) => `x-${i}: a\r\n`).join('')
  for (const upgrade of ['', 'connection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n']) {
    const label = upgrade === '' ? 'request' : 'upgrade'
    const tooMany = await rawExchange(relay.publicPort, `GET /ws HTTP/1.1\r\nhost: open.localhost\r\n${upgrade}${Array.from({ length: 201 }, (_, i) => `x-${i}: a\r\n`).join('')}\r\n`)
    t.equal(rawStatus(tooMany.response), 431, `${label} with 201 header lines: 431`)
    t.ok(tooMany.closedByServer, `${label}: connection closed`)
    const huge = await rawExchange(relay.publicPort, `GET /ws HTTP/1.1\r\nhost: open.localhost\r\n${upgrade}x-big: ${'a'.repeat(20_000)}\r\n\r\n`)
    t.equal(rawStatus(huge.response), 431, `${label} with a 20 KB header: 431`)
    const flood = await rawExchange(relay.publicPort, `GET /ws HTTP/1.1\r\nhost: open.localhost\r\n${upgrade}${many}\r\n`)
    t.equal(rawStatus(flood.response), 431, `${label} with 2001 header lines: 431`)
  }
  t.equal(originSaw().arrivals, before, 'none of them reached the origin')
  const exactly = await rawExchange(relay.publicPort, `GET /echo HTTP/1.1\r\nhost: open.localhost\r\nconnection: close\r\n${Array.from({ length: 198 }, (_, i) => `x-${i}: a\r\n`).join('')}\r\n`)
  t.equal(rawStatus(exactly.response), 200, 'exactly 200 header lines (host, connection and 198 more) are served')
  t.equal((await visit(relay.publicPort, { host: 'open.localhost', path: '/status/204' })).status, 204, 'and so is the next visitor')
})

t.test('Expect: 100-continue: no 100 before access is checked; a refused visitor gets 401 and a close', async t => {
  const before = originSaw().arrivals
  const refused = await headThenListen(`POST /upload HTTP/1.1\r\nhost: team.localhost\r\nexpect: 100-continue\r\ncontent-length: 1073741824\r\n\r\n`, 1000)
  t.equal(rawStatus(refused.text), 401, 'the first answer is 401')
  t.notMatch(refused.text, /100 Continue/, 'no 100 Continue at all')
  const closed = await new Promise<boolean>(resolve => {
    if (refused.socket.destroyed || refused.socket.readableEnded) resolve(true)
    refused.socket.once('close', () => resolve(true))
    setTimeout(() => resolve(false), 2000)
  })
  t.ok(closed, 'the connection is closed without reading the body')
  refused.socket.destroy()
  t.equal(originSaw().arrivals, before, 'the origin saw nothing')

  const tooBig = await headThenListen(`POST /upload HTTP/1.1\r\nhost: team.localhost\r\nauthorization: Basic ${credentials}\r\nexpect: 100-continue\r\ncontent-length: ${2 * MiB}\r\n\r\n`, 1000)
  t.equal(rawStatus(tooBig.text), 413, 'authorised but over max_body_bytes: 413, no 100')
  t.notMatch(tooBig.text, /100 Continue/)
  tooBig.socket.destroy()

  const allowed = await headThenListen(`POST /upload HTTP/1.1\r\nhost: team.localhost\r\nauthorization: Basic ${credentials}\r\nexpect: 100-continue\r\ncontent-length: 5\r\nconnection: close\r\n\r\n`, 500)
  t.match(allowed.text, /^HTTP\/1\.1 100 Continue\r\n\r\n$/, 'an authorised visitor gets 100 Continue first')
  const answer = await new Promise<string>(resolve => {
    let text = ''
    allowed.socket.on('data', (c: Buffer) => { text += c.toString('latin1') })
    allowed.socket.once('close', () => resolve(text))
    allowed.socket.write('hello')
  })
  t.equal(rawStatus(answer), 200, 'then the response')
  t.match(answer, /"bytes":5/, 'and the origin got the 5-byte body')
})

/** Writes `head`, then one more byte every intervalMs; resolves with what came back and when the relay closed. */
function trickle(head: string, intervalMs: number, limitMs: number): Promise<{ text: string; closedAfterMs: number | null }> {
  return new Promise(resolve => {
    const socket = connect(relay.publicPort, '127.0.0.1')
    const started = Date.now()
    let text = ''
    socket.on('data', (c: Buffer) => { text += c.toString('latin1') })
    socket.on('error', () => undefined)
    const drip = setInterval(() => { if (socket.writable) socket.write('a') }, intervalMs)
    const giveUp = setTimeout(() => finish(null), limitMs)
    socket.once('close', () => finish(Date.now() - started))
    function finish(closedAfterMs: number | null): void {
      clearInterval(drip)
      clearTimeout(giveUp)
      socket.destroy()
      resolve({ text, closedAfterMs })
    }
    socket.write(head)
  })
}

t.test('slow clients: headers trickled past headers_timeout_ms and a body past request_timeout_ms are cut off', async t => {
  const before = originSaw().arrivals
  const slowHeaders = await trickle('GET /echo HTTP/1.1\r\nhost: open.localhost\r\nx-slow: ', 200, 6000)
  t.ok(slowHeaders.closedAfterMs !== null, 'a visitor trickling its headers is disconnected')
  t.ok((slowHeaders.closedAfterMs ?? 0) >= 1000 && (slowHeaders.closedAfterMs ?? 0) < 3000, `after ${String(slowHeaders.closedAfterMs)} ms (headers_timeout_ms 1000, checked every second)`)
  t.equal(rawStatus(slowHeaders.text), 408, 'with 408')
  t.equal(originSaw().arrivals, before, 'the origin saw nothing')

  const completed = origin.requests.length
  const slowBody = await trickle('PUT /upload HTTP/1.1\r\nhost: open.localhost\r\ncontent-length: 100000\r\n\r\n', 200, 8000)
  t.ok(slowBody.closedAfterMs !== null, 'a visitor trickling its body is disconnected')
  t.ok((slowBody.closedAfterMs ?? 0) >= 2000 && (slowBody.closedAfterMs ?? 0) < 4500, `after ${String(slowBody.closedAfterMs)} ms (request_timeout_ms 2000)`)
  t.equal(rawStatus(slowBody.text), 408, 'with 408')
  t.equal(origin.requests.length, completed, 'the origin never got a complete upload')
  const streams = (await relay.connectedAgents())[0]?.streams
  t.equal(streams, 1, 'and its stream was released (only the control stream is left)')
})
