// Issue 16's smaller findings, each against the real relay and agent: `OPTIONS *` is answered by
// the relay (it asks about the server, and no local server can be sent a `*` target); CONNECT gets
// a 405 instead of a silent close; the admin listener refuses Host names other than loopback or IP
// literals (DNS rebinding); admin and agent tokens share one strict Bearer parse; a visitor who
// abandons an upload frees its stream at once, not at origin_timeout_ms.
import { connect } from 'node:net'
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { startAgent, startRelay } from './harness/processes.js'
import { rawExchange, rawStatus } from './harness/visitor.js'

const ORIGIN_TIMEOUT_MS = 20_000
let uploadAbortedAt = 0
const origin = await startHttpOrigin(t, {
  '/slow-upload': (req, res) => {
    req.on('data', () => undefined)
    req.on('close', () => { if (!req.complete) uploadAbortedAt = Date.now() })
    req.on('end', () => res.end('got it'))
  },
})
const relay = await startRelay(t, { limits: { origin_timeout_ms: ORIGIN_TIMEOUT_MS } })
const agent = await startAgent(t, relay, { tunnels: [{ http: 'site', to: origin.url }] })

t.test('OPTIONS * is answered by the relay with 204 and Allow; nothing reaches the local server', async (t) => {
  const before = origin.requests.length
  const { response } = await rawExchange(relay.publicPort, 'OPTIONS * HTTP/1.1\r\nHost: site.localhost\r\nConnection: close\r\n\r\n')
  t.equal(rawStatus(response), 204, String(response.split('\r\n')[0]))
  t.match(response, /\r\nallow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n/i)
  t.equal(origin.requests.length, before, 'the origin saw no request')
  t.notMatch(agent.stderr(), /origin request failed/, 'the agent logged no failure')
  const unknown = await rawExchange(relay.publicPort, 'OPTIONS * HTTP/1.1\r\nHost: nobody.localhost\r\nConnection: close\r\n\r\n')
  t.equal(rawStatus(unknown.response), 404, 'an unknown host is still 404')
})

t.test('CONNECT gets 405 with Allow and the connection closed, and the relay serves on', async (t) => {
  const { response, closedByServer } = await rawExchange(relay.publicPort, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')
  t.equal(rawStatus(response), 405, String(response.split('\r\n')[0]))
  t.match(response, /\r\nallow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n/i)
  t.match(response, /x-porchlight-error: PL_ERR_HTTP_BAD_REQUEST/)
  t.equal(closedByServer, true)
  const ok = await rawExchange(relay.publicPort, 'GET /status/204 HTTP/1.1\r\nHost: site.localhost\r\nConnection: close\r\n\r\n')
  t.equal(rawStatus(ok.response), 204)
})

t.test('admin listener: only loopback names and IP literals as Host; the token parse is strict', async (t) => {
  const port = relay.adminPort ?? 0
  const ask = (host: string, auth = `Bearer ${relay.adminToken}`) =>
    rawExchange(port, `GET /api/agents HTTP/1.1\r\nHost: ${host}\r\nAuthorization: ${auth}\r\nConnection: close\r\n\r\n`)
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, '127.0.0.1']) {
    t.equal(rawStatus((await ask(host)).response), 200, `Host ${host}`)
  }
  for (const host of [`evil.example:${port}`, `localhost.evil.example:${port}`, 'tunnel.example.com']) {
    const { response } = await ask(host)
    t.equal(rawStatus(response), 421, `Host ${host} is refused`)
    t.match(response, /PL_ERR_ADMIN_BAD_HOST/)
  }
  t.equal(rawStatus((await ask(`127.0.0.1:${port}`, `Bearer  ${relay.adminToken}`)).response), 401, 'two spaces')
  t.equal(rawStatus((await ask(`127.0.0.1:${port}`, `Bearer ${relay.adminToken} x`)).response), 401, 'a second word')
  t.equal(rawStatus((await ask(`127.0.0.1:${port}`, `Bearer ${relay.adminToken}\tx`)).response), 401, 'a tab inside')
  t.equal(rawStatus((await ask(`127.0.0.1:${port}`, `Basic ${relay.adminToken}`)).response), 401, 'another scheme')
  t.equal(rawStatus((await rawExchange(port, `GET /healthz HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n`)).response), 421, '/healthz too')
})

for (const [how, framing] of [['closes', 'content-length'], ['half-closes', 'content-length'], ['closes', 'chunked'], ['half-closes', 'chunked']] as const) {
  t.test(`an upload the visitor abandons (${how}, ${framing}) frees its stream and the origin request at once`, { timeout: 60_000 }, async (t) => {
    uploadAbortedAt = 0
    const baseline = (await relay.connectedAgents())[0]?.streams ?? -1
    const socket = connect(relay.publicPort, '127.0.0.1')
    socket.on('error', () => undefined)
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    const framingHeader = framing === 'chunked' ? 'Transfer-Encoding: chunked' : 'Content-Length: 1048576'
    socket.write(`POST /slow-upload HTTP/1.1\r\nHost: site.localhost\r\n${framingHeader}\r\n\r\n`)
    const part = Buffer.alloc(16 * 1024, 'a')
    socket.write(framing === 'chunked' ? Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]) : part)
    let during = baseline
    for (let i = 0; i < 50 && during <= baseline; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      during = (await relay.connectedAgents())[0]?.streams ?? -1
    }
    t.equal(during, baseline + 1, 'the upload holds one stream while it runs')
    const left = Date.now()
    if (how === 'closes') socket.destroy()
    else socket.end()
    let after = during
    while (after > baseline && Date.now() - left < ORIGIN_TIMEOUT_MS) {
      await new Promise((resolve) => setTimeout(resolve, 25))
      after = (await relay.connectedAgents())[0]?.streams ?? -1
    }
    const freedMs = Date.now() - left
    t.equal(after, baseline, 'the stream is gone')
    t.ok(freedMs < 1000, `freed ${freedMs} ms after the visitor left (origin timeout ${ORIGIN_TIMEOUT_MS} ms)`)
    while (uploadAbortedAt === 0 && Date.now() - left < 5000) await new Promise((resolve) => setTimeout(resolve, 25))
    t.ok(uploadAbortedAt > 0 && uploadAbortedAt - left < 2000, `the origin's request was aborted ${uploadAbortedAt - left} ms after`)
    socket.destroy()
  })
}
