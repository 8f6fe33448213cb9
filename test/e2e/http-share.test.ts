// Sharing local sites over HTTP: virtual hosts behind nginx, HTTP semantics end to end, and the
// relay's own status pages.
import { createHash } from 'node:crypto'
import { Agent } from 'node:http'
import { Readable } from 'node:stream'
import t from 'tap'
import WebSocket from 'ws'
import { freePort } from './harness/ports.js'
import { nginxMissingReason, startHttpOrigin, startNginx, type OriginRequest } from './harness/origins.js'
import { NGINX_DEFAULT_BODY } from './harness/nginx.js'
import { patternSha256, patternStream } from './harness/pattern.js'
import { startAgent, startRelay } from './harness/processes.js'
import { curl, download, rawExchange, rawStatus, visit, visitStream } from './harness/visitor.js'

const MB = 1024 * 1024
const nginxSkip = nginxMissingReason()

// One relay, one agent, one node origin and one nginx for the whole file (spawning costs seconds).
const origin = await startHttpOrigin(t)
const nginx = nginxSkip === null ? await startNginx(t, [
  { server_name: 'site1.local', body: 'site one' },
  { server_name: 'site2.local', body: 'site two' },
  { server_name: 'site3.local', body: 'site three' },
]) : null
const refusedPort = await freePort() // nothing listens here: the "local server down" case
const relay = await startRelay(t)
const agent = await startAgent(t, relay, {
  tunnels: [
    { http: 'a', to: nginx?.url ?? `http://127.0.0.1:${refusedPort}`, host_header: 'site1.local' },
    { http: 'b', to: nginx?.url ?? `http://127.0.0.1:${refusedPort}`, host_header: 'site2.local' },
    { http: 'echo', to: origin.url },
    { http: 'down', to: `http://127.0.0.1:${refusedPort}` },
  ],
})
const port = relay.publicPort

t.test('the agent prints one Forwarding line per tunnel', async t => {
  t.same(agent.urls.sort(), ['a', 'b', 'down', 'echo'].map(n => `http://${n}.localhost:${port}`))
})

t.test('nginx virtual hosts, each under its own public name', { skip: nginxSkip ?? false }, async t => {
  const a = await curl(['-H', 'Host: a.localhost', '-w', '\n%{http_code}', `http://127.0.0.1:${port}/`])
  t.equal(a.code, 0, a.stderr)
  t.equal(a.stdout, 'site one\n200')
  const b = await curl(['--resolve', `b.localhost:${port}:127.0.0.1`, '-w', '\n%{http_code}', `http://b.localhost:${port}/some/page?q=1`])
  t.equal(b.stdout, 'site two\n200')
  // site3.local exists on the laptop but is not published: the relay must not reach it.
  const c = await curl(['-H', 'Host: c.localhost', '-w', '\n%{http_code}', `http://127.0.0.1:${port}/`])
  t.match(c.stdout, /\n404$/)
  t.notMatch(c.stdout, /site three|site one|site two|a\.localhost|b\.localhost|echo\.localhost/, '404 names no tunnel')
  t.notMatch(a.stdout, NGINX_DEFAULT_BODY, 'Host header was rewritten')
})

t.test('keep-alive: two requests share one visitor connection', async t => {
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => keepAlive.destroy())
  const first = await visit(port, { host: 'echo.localhost', path: '/one', agent: keepAlive })
  const second = await visit(port, { host: 'echo.localhost', path: '/two', agent: keepAlive })
  t.equal(first.status, 200)
  t.equal(second.status, 200)
  t.equal((JSON.parse(second.text) as OriginRequest).url, '/two')
  t.ok(first.localPort !== undefined && first.localPort === second.localPort, `same client socket (${first.localPort} / ${second.localPort})`)
})

t.test('X-Forwarded-* are set by the relay and visitor copies dropped', async t => {
  const res = await visit(port, {
    host: 'echo.localhost',
    path: '/fwd',
    headers: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https', 'x-custom': 'kept' },
  })
  t.equal(res.status, 200)
  const seen = JSON.parse(res.text) as OriginRequest
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
  t.equal(seen.headers['x-forwarded-proto'], 'http')
  t.equal(seen.headers['x-forwarded-host'], 'echo.localhost')
  t.equal(seen.headers['x-custom'], 'kept')
  const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map(h => h.toLowerCase())
  t.equal(names.filter(n => n === 'x-forwarded-for').length, 1, 'exactly one X-Forwarded-For')
  t.notMatch(JSON.stringify(seen.rawHeaders), /203\.0\.113\.9|evil\.example/)
})

t.test('HEAD, 204 and 304 pass through without bodies', async t => {
  const head = await visit(port, { host: 'echo.localhost', method: 'HEAD', path: '/bytes/12345' })
  t.equal(head.status, 200)
  t.equal(head.headers['content-length'], '12345')
  t.equal(head.body.length, 0)
  const noContent = await visit(port, { host: 'echo.localhost', path: '/status/204' })
  t.equal(noContent.status, 204)
  t.equal(noContent.body.length, 0)
  const notModified = await visit(port, { host: 'echo.localhost', path: '/status/304', headers: { 'if-none-match': '"v1"' } })
  t.equal(notModified.status, 304)
  t.equal(notModified.headers['etag'], '"v1"')
  t.equal(notModified.body.length, 0)
  // The connection is still usable after bodiless responses (no stray bytes left on it).
  const after = await visit(port, { host: 'echo.localhost', path: '/status/201' })
  t.equal(after.text, 'status 201\n')
})

t.test('100 MB upload and download keep every byte', { timeout: 120_000 }, async t => {
  const size = 100 * MB
  const up = await visit(port, { host: 'echo.localhost', method: 'PUT', path: '/upload', body: patternStream(size), headers: { 'content-length': String(size) }, timeoutMs: 60_000 })
  t.equal(up.status, 200)
  t.same(JSON.parse(up.text), { bytes: size, sha256: patternSha256(size) })
  const down = await download(port, { host: 'echo.localhost', path: `/bytes/${size}` })
  t.equal(down.status, 200)
  t.equal(down.bytes, size)
  t.equal(down.sha256, patternSha256(size))
  t.comment(`100 MB through the tunnel: download ${down.ms} ms`)
  const upLog = await relay.waitForLog(l => l['msg'] === 'request' && l['method'] === 'PUT' && l['host'] === 'echo.localhost', 5000, 'access line for the upload')
  t.equal(upLog['bytesIn'], size, 'access log counts the upload bytes')
  t.equal(upLog['status'], 200)
  t.type(upLog['ms'], 'number')
  const downLog = await relay.waitForLog(l => l['msg'] === 'request' && typeof l['bytesOut'] === 'number' && l['bytesOut'] >= size, 5000, 'access line for the download')
  t.equal(downLog['bytesOut'], size, 'access log counts the download bytes')
})

t.test('chunked request and response bodies', async t => {
  const parts = ['first part,', 'second part,', 'third']
  const body = Readable.from(parts.map(p => Buffer.from(p)))
  const res = await visit(port, { host: 'echo.localhost', method: 'POST', path: '/upload', body })
  t.equal(res.status, 200)
  const expected = Buffer.from(parts.join(''))
  t.same(JSON.parse(res.text), { bytes: expected.length, sha256: createHash('sha256').update(expected).digest('hex') })
  const chunked = await download(port, { host: 'echo.localhost', path: '/chunked/300000' })
  t.equal(chunked.bytes, 300_000)
  t.equal(chunked.sha256, patternSha256(300_000))
})

t.test('Server-Sent Events arrive as they are sent, not buffered', async t => {
  const started = Date.now()
  const res = await visitStream(port, { host: 'echo.localhost', path: '/sse?count=3', headers: { accept: 'text/event-stream' } })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'text/event-stream')
  const arrivals: number[] = []
  for await (const chunk of res) {
    const events = String(chunk).split('data: ').length - 1
    for (let i = 0; i < events; i++) arrivals.push(Date.now() - started)
  }
  t.equal(arrivals.length, 3, `arrivals: ${arrivals.join(', ')} ms`)
  t.ok((arrivals[0] ?? Infinity) < 1000, `first event within 1 s (${arrivals[0]} ms)`)
  for (let i = 1; i < arrivals.length; i++) {
    const gap = (arrivals[i] ?? 0) - (arrivals[i - 1] ?? 0)
    t.ok(gap >= 150, `event ${i + 1} came ${gap} ms after the previous one`)
  }
})

// SECURITY B10 (f): a WebSocket through the tunnel, frames both ways.
t.test('WebSocket upgrade and echo through the tunnel', async t => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/hot-reload`, { headers: { host: 'echo.localhost' }, perMessageDeflate: false })
  t.teardown(() => ws.terminate())
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  const replies: Array<{ data: Buffer; binary: boolean }> = []
  const gotTwo = new Promise<void>(resolve => ws.on('message', (data, binary) => {
    replies.push({ data: Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer), binary })
    if (replies.length === 2) resolve()
  }))
  const payload = Buffer.alloc(200_000, 7)
  ws.send('hello over the tunnel')
  ws.send(payload)
  await gotTwo
  t.equal(replies[0]?.data.toString(), 'hello over the tunnel')
  t.equal(replies[0]?.binary, false)
  t.equal(replies[1]?.binary, true)
  t.ok(replies[1]?.data.equals(payload), '200 kB binary message echoed intact')
  t.equal(origin.upgrades.at(-1)?.['upgrade'], 'websocket')
})

t.test('malformed requests get 400 and never reach the origin', async t => {
  const before = origin.requestCount
  const dupHost = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: echo.localhost\r\nHost: echo.localhost\r\n\r\n')
  t.equal(rawStatus(dupHost.response), 400, `duplicate Host: ${dupHost.response.split('\r\n')[0]}`)
  const clTe = await rawExchange(port, 'POST /upload HTTP/1.1\r\nHost: echo.localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: echo.localhost\r\n\r\n')
  t.equal(rawStatus(clTe.response), 400, `CL+TE: ${clTe.response.split('\r\n')[0]}`)
  t.equal(origin.requestCount, before, 'origin request counter unchanged')
})

// SECURITY F6 (a): local server down -> 502; B1 unknown host -> 404.
t.test('status pages: unknown host, local server down; HTML for browsers, text for curl', async t => {
  const unknownText = await visit(port, { host: 'nobody.localhost' })
  t.equal(unknownText.status, 404)
  t.match(unknownText.headers['content-type'], /^text\/plain/)
  const unknownHtml = await visit(port, { host: 'nobody.localhost', headers: { accept: 'text/html,application/xhtml+xml' } })
  t.equal(unknownHtml.status, 404)
  t.match(unknownHtml.headers['content-type'], /^text\/html/)
  t.match(unknownHtml.text, /<html/i)

  const downText = await visit(port, { host: 'down.localhost' })
  t.equal(downText.status, 502)
  t.match(downText.headers['content-type'], /^text\/plain/)
  const downHtml = await visit(port, { host: 'down.localhost', headers: { accept: 'text/html' } })
  t.equal(downHtml.status, 502)
  t.match(downHtml.headers['content-type'], /^text\/html/)
  for (const page of [unknownText, unknownHtml, downText, downHtml]) {
    t.notMatch(page.text, new RegExp(`127\\.0\\.0\\.1|${refusedPort}|${relay.agentsPort}|ECONNREFUSED|localhost:${origin.port}`), 'no internal address in the page')
    t.notMatch(page.text, /echo\.localhost|a\.localhost/, 'no other tunnel named')
  }
  const access = await relay.waitForLog(l => l['msg'] === 'request' && l['host'] === 'down.localhost', 5000, 'access log line for down.localhost')
  t.equal(access['status'], 502, 'access log line for the 502')
  t.equal(access['agent'], 'laptop')
  t.equal(access['method'], 'GET')
})

// SECURITY F6 (b): a hung origin -> 504 after origin_timeout_ms.
t.test('a silent origin gets 504 after limits.origin_timeout_ms', async t => {
  const quick = await startRelay(t, { limits: { origin_timeout_ms: 500 } })
  await startAgent(t, quick, { tunnels: [{ http: 'slow', to: origin.url }] })
  const started = Date.now()
  const res = await visit(quick.publicPort, { host: 'slow.localhost', path: '/slow' })
  const ms = Date.now() - started
  t.equal(res.status, 504)
  t.ok(ms >= 450 && ms < 5000, `answered after ${ms} ms`)
  t.notMatch(res.text, /127\.0\.0\.1/)
})
