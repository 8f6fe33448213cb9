// Self-test of the e2e harness: origins, nginx and process handling against stand-in scripts,
// so a broken harness is told apart from a broken product.
import { createHash } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import WebSocket from 'ws'
import { nginxMissingReason, SSE_INTERVAL_MS, startHttpOrigin, startNginx } from './harness/origins.js'
import { NGINX_DEFAULT_BODY } from './harness/nginx.js'
import { PatternVerifier, patternSha256, patternSlice, patternStream } from './harness/pattern.js'
import { runCli, startAgent, startRelay } from './harness/processes.js'
import { curl, rawExchange, rawStatus, visit, visitStream } from './harness/visitor.js'

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures')
const FAKE_RELAY = join(fixtures, 'fake-relay.mjs')
const FAKE_AGENT = join(fixtures, 'fake-agent.mjs')

t.test('pattern: stream, hash and verifier agree', async t => {
  const total = 3 * 65521 + 1234
  const hash = createHash('sha256')
  const verifier = new PatternVerifier()
  for await (const chunk of patternStream(total, 10_000)) { hash.update(chunk as Buffer); verifier.push(chunk as Buffer) }
  t.equal(hash.digest('hex'), patternSha256(total))
  t.equal(verifier.receivedBytes, total)
  t.equal(verifier.firstMismatchAt, -1)

  const broken = new PatternVerifier()
  const chunk = Buffer.from(patternSlice(0, 5000))
  chunk[4321] = (chunk[4321] ?? 0) ^ 1
  broken.push(chunk)
  t.equal(broken.firstMismatchAt, 4321, 'a flipped byte is found at its offset')

  const skipped = new PatternVerifier()
  skipped.push(Buffer.from(patternSlice(0, 16384)))
  skipped.push(Buffer.from(patternSlice(32768, 16384)))
  t.not(skipped.firstMismatchAt, -1, 'a dropped 16 KiB chunk is detected')
})

t.test('http origin routes', async t => {
  const origin = await startHttpOrigin(t)
  const echo = await visit(origin.port, { host: 'echo.test', method: 'POST', path: '/x?y=1', body: 'hello', headers: { 'x-test': 'a' } })
  t.equal(echo.status, 200)
  const seen = JSON.parse(echo.text) as { method: string; url: string; headers: Record<string, string>; bodyBytes: number; bodySha256: string }
  t.equal(seen.method, 'POST')
  t.equal(seen.url, '/x?y=1')
  t.equal(seen.headers['host'], 'echo.test')
  t.equal(seen.headers['x-test'], 'a')
  t.equal(seen.bodyBytes, 5)
  t.equal(seen.bodySha256, createHash('sha256').update('hello').digest('hex'))

  const bytes = await visit(origin.port, { host: 'o', path: '/bytes/100000' })
  t.equal(bytes.headers['content-length'], '100000')
  t.equal(createHash('sha256').update(bytes.body).digest('hex'), patternSha256(100_000))
  const head = await visit(origin.port, { host: 'o', method: 'HEAD', path: '/bytes/100000' })
  t.equal(head.body.length, 0)
  const chunked = await visit(origin.port, { host: 'o', path: '/chunked/1000' })
  t.equal(chunked.headers['transfer-encoding'], 'chunked')
  t.equal(chunked.body.length, 1000)

  const upload = await visit(origin.port, { host: 'o', method: 'PUT', path: '/upload', body: patternStream(300_000) })
  t.same(JSON.parse(upload.text), { bytes: 300_000, sha256: patternSha256(300_000) })

  t.equal((await visit(origin.port, { host: 'o', path: '/status/204' })).status, 204)
  t.equal((await visit(origin.port, { host: 'o', path: '/status/304' })).status, 304)
  t.equal((await visit(origin.port, { host: 'o', path: '/status/418' })).text, 'status 418\n')

  const started = Date.now()
  const sse = await visitStream(origin.port, { host: 'o', path: '/sse?count=3' })
  t.equal(sse.headers['content-type'], 'text/event-stream')
  const arrivals: number[] = []
  for await (const chunk of sse) { if (String(chunk).includes('data: ')) arrivals.push(Date.now() - started) }
  t.equal(arrivals.length, 3)
  t.ok((arrivals[2] ?? 0) - (arrivals[0] ?? 0) >= 2 * SSE_INTERVAL_MS - 50, `events spaced: ${arrivals.join(',')} ms`)

  const ws = new WebSocket(`ws://127.0.0.1:${origin.port}/ws`, { headers: { host: 'o.test' } })
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  const reply = new Promise<string>(resolve => ws.once('message', data => resolve(String(data))))
  ws.send('ping 1')
  t.equal(await reply, 'ping 1')
  ws.close()
  t.equal(origin.upgrades[0]?.['host'], 'o.test')

  const slow = await rawExchange(origin.port, 'GET /slow HTTP/1.1\r\nHost: o\r\n\r\n', 300)
  t.equal(slow.response, '', '/slow sends nothing')
  t.equal(slow.closedByServer, false)
  const before = origin.requestCount
  const raw = await rawExchange(origin.port, 'GET /status/200 HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n')
  t.equal(rawStatus(raw.response), 200)
  t.equal(origin.requestCount, before + 1)

  const viaCurl = await curl(['-H', 'Host: curl.test', `${origin.url}/status/201`])
  t.equal(viaCurl.code, 0)
  t.equal(viaCurl.stdout, 'status 201\n')
})

t.test('nginx serves one body per vhost', { skip: nginxMissingReason() ?? false }, async t => {
  const nginx = await startNginx(t, [{ server_name: 'site1.local', body: 'site one' }, { server_name: 'site2.local', body: 'site two' }])
  t.equal((await visit(nginx.port, { host: 'site1.local' })).text, 'site one')
  t.equal((await visit(nginx.port, { host: 'site2.local', path: '/deep/path' })).text, 'site two')
  const other = await visit(nginx.port, { host: 'elsewhere.local' })
  t.equal(other.status, 421)
  t.equal(other.text, NGINX_DEFAULT_BODY)
})

t.test('relay and agent handles against stand-in scripts', async t => {
  const relay = await startRelay(t, { bin: FAKE_RELAY, agents: { laptop: {}, desk: { hosts: ['desk.localhost'] } } })
  t.ok(relay.publicPort > 0 && relay.agentsPort > 0 && relay.adminPort !== null)
  t.match(relay.agentsUrl, /^ws:\/\/127\.0\.0\.1:\d+$/)
  t.same(Object.keys(relay.tokens), ['laptop', 'desk'])
  t.equal(relay.config.agents['desk']?.hosts[0], 'desk.localhost')
  t.match(relay.config.agents['laptop']?.token_sha256 ?? '', /^[0-9a-f]{64}$/)

  const agent = await startAgent(t, relay, { bin: FAKE_AGENT, tunnels: [{ http: 'a', to: 'http://127.0.0.1:1' }, { http: 'b', to: 'http://127.0.0.1:2' }] })
  t.same(agent.urls, [`http://a.localhost:${relay.agentsPort}`, `http://b.localhost:${relay.agentsPort}`])
  t.equal(agent.logs()[0]?.['msg'], 'tunnel ready')

  const ports = [relay.publicPort, relay.agentsPort, relay.adminPort]
  const firstPid = relay.pid
  t.equal(await relay.kill('SIGKILL'), null, 'SIGKILL leaves no exit code')
  await relay.restart()
  t.not(relay.pid, firstPid)
  t.same([relay.publicPort, relay.agentsPort, relay.adminPort], ports, 'restart keeps the learned ports')
  t.equal(relay.logs().filter(l => l['msg'] === 'ready').length, 2)

  const bad = await startAgent(t, relay, { bin: FAKE_AGENT, token: 'bad', expectExit: true })
  t.equal(await bad.exited, 1)
  t.match(bad.stderr(), /PL_ERR_AUTH_BAD_TOKEN/)

  const stubborn = await startAgent(t, relay, { bin: FAKE_AGENT, env: { FAKE_IGNORE_SIGTERM: '1' }, tunnels: [{ http: 'c', to: 'http://127.0.0.1:3' }] })
  const killStarted = Date.now()
  t.equal(await stubborn.kill('SIGTERM'), null, 'SIGKILL after the grace period')
  t.ok(Date.now() - killStarted >= 1900, 'waited for the grace period first')

  const usage = await runCli('relay', ['nonsense'], { bin: FAKE_RELAY })
  t.equal(usage.code, 2)
  t.match(usage.stderr, /usage: fake-relay/)
})

t.test('waiting for a line that never comes fails with the log tail', async t => {
  const relay = await startRelay(t, { bin: FAKE_RELAY })
  const agent = await startAgent(t, relay, { bin: FAKE_AGENT, tunnels: [{ http: 'a', to: 'http://127.0.0.1:1' }] })
  await t.rejects(agent.waitForLine(/never printed/, 200), /no \/never printed\/ within 200 ms[\s\S]*Forwarding http:\/\/a\.localhost/)
})
