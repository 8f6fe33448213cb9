import t, { type Test } from 'tap'
import type { AgentConfig, AgentTunnel } from '@porchlight/shared/config'
import net from 'node:net'
import { buildAgent, type Agent, type TunnelReadyEvent } from '../src/agent.js'
import { FakeRelay, startFakeRelay, TEST_TOKEN } from './helpers/fake-relay.js'
import { memoryLogger } from './helpers/log.js'
import { startOrigin } from './helpers/origin.js'
import { encodeMessage } from '@porchlight/shared/protocol'
import { patternBytes, readBody, readReply, sha256 } from './helpers/streams.js'

const FAST_ENV = { PORCHLIGHT_BACKOFF_MAX_MS: '200' }

function httpTunnel(id: string, to: string, hostHeader: string | null = null): AgentTunnel {
  return { kind: 'http', id, http: id, to, host_header: hostHeader, access: null }
}

function agentConfig(relay: FakeRelay, tunnels: AgentTunnel[], overrides: Partial<AgentConfig> = {}): AgentConfig {
  return { relay: relay.url, token: TEST_TOKEN, cert: null, ca: null, tunnels, inspect: null, ...overrides }
}

function startAgent(t: Test, config: AgentConfig, extra: { controlTimeoutMs?: number } = {}) {
  const logs = memoryLogger()
  const agent = buildAgent(config, { log: logs.log, env: FAST_ENV, ...extra })
  const ready: TunnelReadyEvent[] = []
  agent.on('tunnel', (e: TunnelReadyEvent) => ready.push(e))
  t.teardown(() => agent.stop(0))
  return { agent, logs, ready }
}

function once<T = unknown>(agent: Agent, event: string, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeoutMs} ms`)), timeoutMs)
    agent.once(event, (value: T) => {
      clearTimeout(timer)
      resolve(value)
    })
  })
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const started = Date.now()
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 20))
  }
}

t.test('connects, says hello, publishes, and serves a visitor request end to end', async (t) => {
  const origin = await startOrigin(t)
  const relay = await startFakeRelay(t)
  const { agent, logs, ready } = startAgent(t, agentConfig(relay, [httpTunnel('blog', origin.url, 'blog.local')]))
  await agent.start()
  const tunnel = await once<TunnelReadyEvent>(agent, 'tunnel')
  t.same(tunnel, { id: 'blog', kind: 'http', url: `http://blog.localhost:${relay.port}`, to: origin.url })
  const session = relay.lastSession()
  t.equal(relay.upgrades[0]?.authorization, `Bearer ${TEST_TOKEN}`)
  t.equal(relay.upgrades[0]?.url, '/_porchlight/connect')
  const hello = session.messages[0]
  t.equal(hello?.type, 'hello')
  t.equal(hello?.type === 'hello' && hello.version, 1)
  t.same(session.messages[1], { type: 'publish', tunnels: [{ id: 'blog', kind: 'http', host: 'blog', origin: { host: 'blog.local', path: '' } }] })

  const stream = session.openStream({ t: 'http', tunnel: 'blog', host: 'blog.localhost', method: 'GET', url: '/hello', headers: [], upgrade: false })
  stream.end()
  const reply = await readReply(stream)
  t.equal(reply.t === 'response' && reply.status, 200)
  t.equal((await readBody(stream)).bytes.toString(), 'hello')

  const status = agent.status()
  t.equal(status.connected, true)
  t.equal(status.session, 's1')
  t.equal(status.agent, 'laptop')
  t.same(status.tunnels, [{ id: 'blog', kind: 'http', state: 'ready', url: `http://blog.localhost:${relay.port}`, to: origin.url }])
  t.ok(logs.lines().some((l) => l['msg'] === 'connected' && l['session'] === 's1'), 'logs "connected" with the session')
  t.ok(logs.lines().some((l) => l['msg'] === 'tunnel ready' && l['tunnel'] === 'blog'), 'logs "tunnel ready"')
  t.notOk(logs.text().includes(TEST_TOKEN), 'the token never appears in logs')
  t.equal(ready.length, 1)
})

t.test('streams for hosts or tunnels the agent does not publish get PL_ERR_POLICY_NOT_PUBLISHED and dial nothing', async (t) => {
  const origin = await startOrigin(t)
  const relay = await startFakeRelay(t)
  const { agent } = startAgent(t, agentConfig(relay, [httpTunnel('blog', origin.url)]))
  await agent.start()
  await once(agent, 'tunnel')
  const session = relay.lastSession()
  const heads = [
    { t: 'http', tunnel: 'blog', host: 'evil.localhost', method: 'GET', url: '/', headers: [], upgrade: false },
    { t: 'http', tunnel: 'other', host: 'blog.localhost', method: 'GET', url: '/', headers: [], upgrade: false },
    { t: 'tcp', tunnel: 'tcp:22', remote_address: '203.0.113.1', remote_port: 5555, local_address: '127.0.0.1', local_port: 2222 },
    { t: 'forward', host: '127.0.0.1', port: origin.port },
  ]
  for (const head of heads) {
    const stream = session.openStream(head)
    stream.end()
    const reply = await readReply(stream)
    t.same(reply, { t: 'error', code: 'PL_ERR_POLICY_NOT_PUBLISHED', message: reply.t === 'error' ? reply.message : '' }, `${head.t} ${'tunnel' in head ? head.tunnel : ''}`)
    t.equal(reply.t === 'error' && reply.code, 'PL_ERR_POLICY_NOT_PUBLISHED')
  }
  t.equal(origin.connections(), 0, 'the origin saw no connection')
})

t.test('a rejected tunnel is logged with its code and not served', async (t) => {
  const origin = await startOrigin(t)
  const relay = await startFakeRelay(t, {
    publish: (tunnels) => tunnels.map((s) => (s.id === 'admin'
      ? { id: s.id, ok: false as const, code: 'PL_ERR_POLICY_HOST_DENIED', message: 'host admin.localhost is not allowed for agent laptop' }
      : { id: s.id, ok: true as const, url: `http://${s.id}.localhost:1` })),
  })
  const { agent, logs } = startAgent(t, agentConfig(relay, [httpTunnel('blog', origin.url), httpTunnel('admin', origin.url)]))
  const rejected = once<{ id: string; code: string }>(agent, 'rejected')
  await agent.start()
  t.same(await rejected, { id: 'admin', code: 'PL_ERR_POLICY_HOST_DENIED', message: 'host admin.localhost is not allowed for agent laptop' })
  const line = logs.lines().find((l) => l['msg'] === 'tunnel rejected: host admin.localhost is not allowed for agent laptop')
  t.equal(line?.['level'], 50, 'error level')
  t.equal(line?.['code'], 'PL_ERR_POLICY_HOST_DENIED')
  const stream = relay.lastSession().openStream({ t: 'http', tunnel: 'admin', host: 'admin.localhost', method: 'GET', url: '/', headers: [], upgrade: false })
  stream.end()
  const reply = await readReply(stream)
  t.equal(reply.t === 'error' && reply.code, 'PL_ERR_POLICY_NOT_PUBLISHED')
  t.same(agent.status().tunnels.map((s) => s.state), ['ready', 'rejected'])
})

t.test('bad token: fatal PL_ERR_AUTH_BAD_TOKEN after one attempt, no retries', async (t) => {
  const relay = await startFakeRelay(t, { token: 'a-different-token-0123456789-0123456789' })
  const { agent } = startAgent(t, agentConfig(relay, []))
  const fatal = once<{ code: string; message: string }>(agent, 'fatal')
  await agent.start()
  const err = await fatal
  t.equal(err.code, 'PL_ERR_AUTH_BAD_TOKEN')
  t.equal(err.message, 'relay rejected the agent token (HTTP 401)')
  await new Promise((r) => setTimeout(r, 400))
  t.equal(relay.upgrades.length, 1, 'never retried')
  t.equal(agent.status().state, 'failed')
})

t.test("403: fatal PL_ERR_AUTH_CERT_REJECTED carrying the relay's reason", async (t) => {
  const relay = await startFakeRelay(t, { rejectWith: { status: 403, body: 'PL_ERR_AUTH_CERT_REJECTED: certificate revoked\n' } })
  const { agent } = startAgent(t, agentConfig(relay, []))
  const fatal = once<{ code: string; message: string }>(agent, 'fatal')
  await agent.start()
  const err = await fatal
  t.equal(err.code, 'PL_ERR_AUTH_CERT_REJECTED')
  t.equal(err.message, 'client certificate rejected: certificate revoked')
})

t.test('429 and unreachable relays are retried with backoff (status shows the attempt)', async (t) => {
  const relay = await startFakeRelay(t, { rejectWith: { status: 429, body: 'slow down' } })
  const { agent, logs } = startAgent(t, agentConfig(relay, []))
  await agent.start()
  await until(() => relay.upgrades.length >= 3)
  const status = agent.status()
  t.equal(status.connected, false)
  t.equal(status.lastError?.code, 'PL_ERR_AUTH_RATE_LIMITED')
  t.ok((status.reconnect?.attempt ?? 0) >= 2, 'attempt counter grows')
  const reconnecting = logs.lines().filter((l) => l['msg'] === 'reconnecting')
  t.ok(reconnecting.length >= 2)
  t.ok(reconnecting.every((l) => typeof l['delayMs'] === 'number' && (l['delayMs'] as number) <= 200), 'delays honour PORCHLIGHT_BACKOFF_MAX_MS')
})

t.test('relay restart: link lost, reconnect with backoff, re-publish, serve again', async (t) => {
  const origin = await startOrigin(t)
  const relay = await startFakeRelay(t)
  const { agent, logs } = startAgent(t, agentConfig(relay, [httpTunnel('blog', origin.url)]))
  await agent.start()
  await relay.waitForPublishes(1)
  const port = relay.port
  await relay.kill()
  await until(() => logs.lines().some((l) => l['msg'] === 'link lost'))
  t.equal(agent.status().tunnels[0]?.state, 'offline')
  const restarted = new FakeRelay()
  await restarted.start(port)
  t.teardown(() => restarted.kill())
  await restarted.waitForPublishes(1)
  await until(() => agent.status().connected)
  const stream = restarted.lastSession().openStream({ t: 'http', tunnel: 'blog', host: 'blog.localhost', method: 'GET', url: '/hello', headers: [], upgrade: false })
  stream.end()
  const reply = await readReply(stream)
  t.equal(reply.t === 'response' && reply.status, 200)
  t.ok(logs.lines().some((l) => l['msg'] === 'reconnecting' && typeof l['attempt'] === 'number'), 'logged reconnecting with attempt')
})

t.test('a relay that never answers hello is dropped after the control timeout and redialled', async (t) => {
  const relay = await startFakeRelay(t, { silent: true })
  const { agent, logs } = startAgent(t, agentConfig(relay, []), { controlTimeoutMs: 200 })
  await agent.start()
  await until(() => relay.upgrades.length >= 2)
  t.ok(logs.lines().some((l) => (l['err'] as { code?: string } | undefined)?.code === 'PL_ERR_LINK_TIMEOUT'), 'PL_ERR_LINK_TIMEOUT logged')
})

t.test('protocol version mismatch is fatal', async (t) => {
  const relay = await startFakeRelay(t, { welcomeVersion: 99 })
  const { agent } = startAgent(t, agentConfig(relay, []))
  const fatal = once<{ code: string }>(agent, 'fatal')
  await agent.start()
  t.equal((await fatal).code, 'PL_ERR_PROTO_VERSION')
})

t.test('reload: re-publishes the new set on the same session; kept tunnels keep serving', async (t) => {
  const origin = await startOrigin(t)
  const relay = await startFakeRelay(t)
  const first = agentConfig(relay, [httpTunnel('blog', origin.url)])
  const { agent } = startAgent(t, first)
  await agent.start()
  await relay.waitForPublishes(1)
  await agent.reload({ ...first, tunnels: [httpTunnel('blog', origin.url), httpTunnel('docs', origin.url)] })
  await relay.waitForPublishes(2)
  t.equal(relay.sessions.length, 1, 'same session')
  const publishes = relay.lastSession().messages.filter((m) => m.type === 'publish')
  const originSpec = { host: new URL(origin.url).host, path: '' }
  t.same(publishes[1], { type: 'publish', tunnels: [{ id: 'blog', kind: 'http', host: 'blog', origin: originSpec }, { id: 'docs', kind: 'http', host: 'docs', origin: originSpec }] })
  await until(() => agent.status().tunnels.every((s) => s.state === 'ready'))
  for (const name of ['blog', 'docs']) {
    const stream = relay.lastSession().openStream({ t: 'http', tunnel: name, host: `${name}.localhost`, method: 'GET', url: '/hello', headers: [], upgrade: false })
    stream.end()
    const reply = await readReply(stream)
    t.equal(reply.t === 'response' && reply.status, 200, `${name} served`)
  }
  // Dropping a tunnel stops serving it at once, even before the relay answers.
  await agent.reload({ ...first, tunnels: [httpTunnel('docs', origin.url)] })
  const stream = relay.lastSession().openStream({ t: 'http', tunnel: 'blog', host: 'blog.localhost', method: 'GET', url: '/hello', headers: [], upgrade: false })
  stream.end()
  const reply = await readReply(stream)
  t.equal(reply.t === 'error' && reply.code, 'PL_ERR_POLICY_NOT_PUBLISHED')
})

t.test('reload with a new token reconnects', async (t) => {
  const relay = await startFakeRelay(t)
  const first = agentConfig(relay, [])
  const { agent } = startAgent(t, first)
  await agent.start()
  await relay.waitForPublishes(1)
  await agent.reload({ ...first, token: `${TEST_TOKEN}` , relay: `${relay.url}/` })
  await relay.waitForPublishes(2)
  t.equal(relay.sessions.length, 2, 'a second session')
})

t.test('control requests reach the relay and errors keep their code', async (t) => {
  const relay = await startFakeRelay(t, {
    request: (req) => (req.op === 'link.create'
      ? { ok: true, result: { id: 'abc', url: 'http://blog.localhost/?porchlight_share=x', args: req.args } }
      : { ok: false, code: 'PL_ERR_NOT_FOUND', message: 'link zzz not found' }),
  })
  const { agent } = startAgent(t, agentConfig(relay, []))
  await t.rejects(agent.request('link.list', {}), { code: 'PL_ERR_LINK_LOST' }, 'offline before connecting')
  await agent.start()
  await relay.waitForPublishes(1)
  t.same(await agent.request('link.create', { host: 'blog', expires_ms: 60_000, note: '' }), {
    id: 'abc', url: 'http://blog.localhost/?porchlight_share=x', args: { host: 'blog', expires_ms: 60_000, note: '' },
  })
  await t.rejects(agent.request('link.revoke', { id: 'zzz' }), { code: 'PL_ERR_NOT_FOUND', message: 'link zzz not found' })
})

t.test('stop() drains in-flight requests, then closes the link', async (t) => {
  const origin = await startOrigin(t)
  const relay = await startFakeRelay(t)
  const { agent } = startAgent(t, agentConfig(relay, [httpTunnel('blog', origin.url)]))
  await agent.start()
  await once(agent, 'tunnel')
  const stream = relay.lastSession().openStream({ t: 'http', tunnel: 'blog', host: 'blog.localhost', method: 'GET', url: '/chunked', headers: [], upgrade: false })
  stream.end()
  const replyP = readReply(stream)
  await until(() => agent.status().streams === 1)
  const started = Date.now()
  const stopped = agent.stop(5_000)
  const reply = await replyP
  t.equal(reply.t === 'response' && reply.status, 200)
  const body = await readBody(stream)
  t.equal(body.bytes.toString(), 'chunk1;chunk2;chunk3;', 'the in-flight response completed')
  await stopped
  t.ok(Date.now() - started < 2_000, 'stop returned once idle, not after the whole grace period')
  await until(() => relay.lastSession().mux.closed)
  t.equal(agent.status().state, 'stopped')
})

t.test('forward tunnels: listener bound at start, streams opened with a ForwardHead, bytes both ways', async (t) => {
  const relay = await startFakeRelay(t, { forward: 'echo' })
  const tunnel: AgentTunnel = { kind: 'forward', id: 'forward:0', forward: { host: '127.0.0.1', port: 0 }, to: { host: 'smtp.example.com', port: 587 } }
  const { agent } = startAgent(t, agentConfig(relay, [tunnel]))
  const forwardEvent = once<TunnelReadyEvent>(agent, 'forward')
  await agent.start()
  const event = await forwardEvent
  const address = agent.forwardAddress('forward:0')
  t.ok(address !== null && address.port > 0)
  t.same(event, { id: 'forward:0', kind: 'forward', url: `tcp://127.0.0.1:${address?.port}`, to: 'smtp.example.com:587' })
  await relay.waitForPublishes(1)
  t.same(relay.lastSession().messages[1], { type: 'publish', tunnels: [] }, 'forwards are never published')
  const echoed = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(address!.port, '127.0.0.1', () => socket.end('EHLO laptop\r\n'))
    let got = ''
    socket.on('data', (c: Buffer) => { got += c.toString() })
    socket.on('end', () => resolve(got))
    socket.on('error', reject)
  })
  t.equal(echoed, 'EHLO laptop\r\n', 'half-close: the echo arrives after our FIN')
  t.same(relay.forwardHeads, [{ t: 'forward', host: 'smtp.example.com', port: 587 }])
  t.same(agent.status().tunnels[0], { id: 'forward:0', kind: 'forward', state: 'listening', url: `tcp://127.0.0.1:${address?.port}`, to: 'smtp.example.com:587' })
})

t.test('forward while the link is down: the local connection is closed at once', async (t) => {
  const relay = await startFakeRelay(t, { token: 'not-the-agent-token-0123456789-0123456789' , rejectWith: { status: 429, body: 'later' } })
  const tunnel: AgentTunnel = { kind: 'forward', id: 'forward:0', forward: { host: '127.0.0.1', port: 0 }, to: { host: 'smtp.example.com', port: 587 } }
  const { agent } = startAgent(t, agentConfig(relay, [tunnel]))
  await agent.start()
  const port = agent.forwardAddress('forward:0')!.port
  const started = Date.now()
  await new Promise<void>((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.on('error', () => resolve())
    socket.on('close', () => resolve())
  })
  t.ok(Date.now() - started < 1_000, 'closed within 1 s')
  t.equal(relay.forwardHeads.length, 0)
})

t.test('a POST whose head and body arrive in one chunk: body bytes are never parsed as frames', async (t) => {
  const origin = await startOrigin(t)
  const relay = await startFakeRelay(t)
  const { agent } = startAgent(t, agentConfig(relay, [httpTunnel('blog', origin.url)]))
  await agent.start()
  await once(agent, 'tunnel')
  const body = Buffer.concat([Buffer.from('hello'), patternBytes(300_000)])
  const stream = relay.lastSession().mux.open()
  const head = { t: 'http', tunnel: 'blog', host: 'blog.localhost', method: 'POST', url: '/echo', headers: [['Content-Length', String(body.length)]], upgrade: false }
  stream.end(Buffer.concat([encodeMessage(head), body]))
  const reply = await readReply(stream)
  t.equal(reply.t === 'response' && reply.status, 200)
  const seen = JSON.parse((await readBody(stream)).bytes.toString()) as { bodySha256: string; bodyBytes: number }
  t.same(seen, { ...seen, bodyBytes: body.length, bodySha256: sha256(body) })
})

t.test('a cluster lease: a repeated refusal is printed once; a lost lease stops serving at once, is printed once and retried', async (t) => {
  const origin = await startOrigin(t)
  let held = true
  const relay = await startFakeRelay(t, {
    publish: (tunnels) => tunnels.map((s) => (held
      ? { id: s.id, ok: false as const, code: 'PL_ERR_LEASE_HELD', message: 'host blog.localhost is leased to another agent of the cluster (other); publishing again later' }
      : { id: s.id, ok: true as const, url: `http://${s.id}.localhost:1` })),
  })
  const logs = memoryLogger()
  const agent = buildAgent(agentConfig(relay, [httpTunnel('blog', origin.url)]), { log: logs.log, env: { ...FAST_ENV, PORCHLIGHT_REJECTED_RETRY_MS: '50' } })
  t.teardown(() => agent.stop(0))
  const rejected: string[] = []
  agent.on('rejected', (r: { code: string }) => rejected.push(r.code))
  await agent.start()
  await relay.waitForPublishes(4)
  const refusals = () => logs.lines().filter((l) => String(l['msg']).startsWith('tunnel rejected')).length
  t.equal(refusals(), 1, 'four refusals with the same code, one line')
  t.same(rejected, ['PL_ERR_LEASE_HELD'])

  held = false
  await once(agent, 'tunnel')
  const session = relay.lastSession()
  // The relay says the lease passed: the host is refused by the agent itself from now on.
  held = true
  session.send({ type: 'notice', level: 'warn', code: 'PL_ERR_LEASE_LOST', message: 'blog blog.localhost' })
  session.send({ type: 'notice', level: 'warn', code: 'PL_ERR_LEASE_LOST', message: 'blog blog.localhost' })
  await until(() => agent.status().tunnels[0]?.state === 'rejected')
  const stream = session.openStream({ t: 'http', tunnel: 'blog', host: 'blog.localhost', method: 'GET', url: '/', headers: [], upgrade: false })
  stream.end()
  const reply = await readReply(stream)
  t.equal(reply.t === 'error' && reply.code, 'PL_ERR_POLICY_NOT_PUBLISHED', 'not served after the lease was lost')
  t.equal(origin.connections(), 0)
  const before = relay.publishCount()
  await relay.waitForPublishes(before + 2)
  // Printed: info and above (the supervisor notes each link's notice at debug only).
  const lost = logs.lines().filter((l) => l['code'] === 'PL_ERR_LEASE_LOST' && Number(l['level']) >= 30)
  t.equal(lost.length, 1, `printed once: ${String(lost[0]?.['msg'])}`)
  t.equal(lost[0]?.['msg'], 'the cluster lease on host blog.localhost passed to another agent: tunnel blog removed; publishing again later')
  t.same(rejected, ['PL_ERR_LEASE_HELD', 'PL_ERR_LEASE_LOST', 'PL_ERR_LEASE_HELD'], 'each change of code said once')
})
