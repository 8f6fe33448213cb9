// Faults and shutdown against the real binaries (SECURITY.md F1, F2, F10, G1, G2, H4, H8): an agent
// killed before it answered, an agent draining, a relay that crashes on an injected fault and is
// restarted, a relay draining live and idle visitors or out of grace, a port already taken, and
// `check` on a good and a bad file.
import { existsSync, writeFileSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { writeYaml } from '../e2e/harness/config.js'
import { startHttpOrigin } from '../e2e/harness/origins.js'
import { freePort } from '../e2e/harness/ports.js'
import { RELAY_BIN, runCli, startAgent, startRelay } from '../e2e/harness/processes.js'
import { listenEphemeral, probePort } from '../e2e/harness/tcp.js'
import { visit, visitStream } from '../e2e/harness/visitor.js'
import { pollUntil } from '../e2e/harness/wait.js'

const WRAPPER = join(import.meta.dirname, 'fixtures', 'fault-wrapper.mjs')

function slowOrigin(t: Parameters<typeof startHttpOrigin>[0], ms: number) {
  return startHttpOrigin(t, {
    '/slow': (_req, res) => { setTimeout(() => res.end('finished'), ms) },
    '/never': (req) => { req.resume() },
    '/sse-forever': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      const timer = setInterval(() => res.write('data: tick\n\n'), 200)
      res.on('close', () => clearInterval(timer))
    },
  })
}

t.test('F1: an agent SIGKILLed before its origin answered: the waiting visitor gets a labelled 503 within 1.5 s', async (t) => {
  const origin = await slowOrigin(t, 60_000)
  const relay = await startRelay(t)
  const agent = await startAgent(t, relay, { tunnels: [{ http: 'f1', to: origin.url }] })
  const waiting = visit(relay.publicPort, { host: 'f1.localhost', path: '/never', timeoutMs: 10_000 })
  t.ok((await pollUntil(async () => (await relay.connectedAgents())[0]?.streams ?? 0, (n) => n >= 2, { timeoutMs: 5000 })).ok, 'the stream is open')
  const killed = Date.now()
  await agent.kill('SIGKILL')
  const res = await waiting
  const ms = Date.now() - killed
  t.ok([502, 503].includes(res.status), `status ${res.status}`)
  t.equal(res.headers['x-porchlight-error'], 'PL_ERR_HTTP_TUNNEL_OFFLINE', 'labelled: tunnel offline')
  t.ok(ms < 1500, `answered ${ms} ms after the kill`)
})

t.test('F2: agent SIGTERM with requests in flight: they finish 200, new ones get 503 at once, the agent exits 0 in < 6 s', async (t) => {
  const origin = await slowOrigin(t, 1500)
  const relay = await startRelay(t)
  const agent = await startAgent(t, relay, { tunnels: [{ http: 'f2', to: origin.url }] })
  const inFlight = Array.from({ length: 5 }, () => visit(relay.publicPort, { host: 'f2.localhost', path: '/slow', timeoutMs: 10_000 }))
  t.ok((await pollUntil(async () => (await relay.connectedAgents())[0]?.streams ?? 0, (n) => n >= 6, { timeoutMs: 5000 })).ok, '5 streams open')
  const signalled = Date.now()
  process.kill(agent.pid, 'SIGTERM')
  await agent.waitForLine(/"msg":"stopping"/, 2000, 'stopping line')
  const during = await visit(relay.publicPort, { host: 'f2.localhost', path: '/slow', timeoutMs: 5000 })
  t.equal(during.status, 503, 'a new request during the drain: 503')
  t.equal(during.headers['x-porchlight-error'], 'PL_ERR_HTTP_TUNNEL_OFFLINE')
  const results = await Promise.all(inFlight)
  t.same(results.map((r) => [r.status, r.text]), Array(5).fill([200, 'finished']), 'the 5 in flight completed')
  t.equal(await agent.exited, 0)
  t.ok(Date.now() - signalled < 6000, `agent exited ${Date.now() - signalled} ms after SIGTERM`)
})

for (const kind of ['throw', 'reject'] as const) {
  t.test(`F10 (${kind === 'throw' ? 'b' : 'c'}): ${kind === 'throw' ? 'a throw in a callback' : 'an unhandled rejection'}: fatal log line, exit 70; restarted, the agent is back`, async (t) => {
    const origin = await startHttpOrigin(t)
    const trigger = join(t.testdir(), 'fault-now')
    const relay = await startRelay(t, { bin: WRAPPER, env: { FAULT_TARGET: RELAY_BIN, FAULT_KIND: kind, FAULT_TRIGGER_FILE: trigger } })
    await startAgent(t, relay, { tunnels: [{ http: 'f10', to: origin.url }] })
    t.equal((await visit(relay.publicPort, { host: 'f10.localhost', path: '/status/204' })).status, 204)
    writeFileSync(trigger, '')
    t.equal(await relay.exited, 70, 'exit code 70 (EX_SOFTWARE) for the supervisor to restart')
    const fatal = relay.logs().find((l) => l['level'] === 60)
    t.match(fatal, { msg: 'uncaught exception', err: { message: /injected fault/ } }, 'one fatal line with the error')
    t.notOk(existsSync(trigger))
    await relay.restart()
    const back = await pollUntil(() => visit(relay.publicPort, { host: 'f10.localhost', path: '/status/204' }).then((r) => r.status), (s) => s === 204, { timeoutMs: 10_000, intervalMs: 200 })
    t.equal(back.value, 204, `the agent reconnected to the restarted relay (${back.ms} ms)`)
  })
}

t.test('G1: relay SIGTERM: listener closed and idle keep-alive visitors dropped at once, live SSE served until it ends, exit 0', async (t) => {
  const origin = await startHttpOrigin(t, {
    '/sse-2s': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      let n = 0
      const timer = setInterval(() => { res.write(`data: ${++n}\n\n`); if (n === 10) { clearInterval(timer); res.end() } }, 200)
    },
  })
  const relay = await startRelay(t)
  await startAgent(t, relay, { tunnels: [{ http: 'g1', to: origin.url }] })
  const sse = Array.from({ length: 5 }, () => visit(relay.publicPort, { host: 'g1.localhost', path: '/sse-2s', timeoutMs: 15_000 }))
  // Idle keep-alive visitors: one request answered each, then the socket stays open.
  const idle = await Promise.all(Array.from({ length: 10 }, () => new Promise<ReturnType<typeof connect>>((resolve) => {
    const s = connect(relay.publicPort, '127.0.0.1')
    s.on('error', () => undefined)
    s.write('GET /status/204 HTTP/1.1\r\nHost: g1.localhost\r\n\r\n')
    s.once('data', () => resolve(s))
  })))
  const idleClosed = idle.map((s) => new Promise<number>((resolve) => s.once('close', () => resolve(Date.now()))))
  await new Promise((r) => setTimeout(r, 300))
  const signalled = Date.now()
  process.kill(relay.pid, 'SIGTERM')
  await relay.waitForLog((l) => l['msg'] === 'draining', 2000, 'draining')
  const probe = await probePort(relay.publicPort, 200)
  t.not(probe, 'open', `the public listener serves no new connection (${probe})`)
  const closedAt = await Promise.all(idleClosed)
  t.ok(Math.max(...closedAt) - signalled < 1000, `idle keep-alive sockets closed within ${Math.max(...closedAt) - signalled} ms`)
  const results = await Promise.all(sse)
  t.same(results.map((r) => r.status), Array(5).fill(200))
  t.ok(results.every((r) => (r.text.match(/data: /g) ?? []).length === 10), 'every SSE stream got all 10 events')
  t.equal(await relay.exited, 0)
  const tookMs = Date.now() - signalled
  t.ok(tookMs < 4000, `exited ${tookMs} ms after SIGTERM (the streams needed ~2 s, grace 10 s)`)
})

t.test('G2: streams longer than the 10 s grace: forced close at 10 s +- 1.5 s, visibly truncated, exit 0', async (t) => {
  const origin = await slowOrigin(t, 0)
  const relay = await startRelay(t)
  await startAgent(t, relay, { tunnels: [{ http: 'g2', to: origin.url }] })
  const res = await visitStream(relay.publicPort, { host: 'g2.localhost', path: '/sse-forever' })
  let events = 0
  let ended = false
  const done = new Promise<void>((resolve) => {
    res.on('data', (c: Buffer) => { events += (c.toString().match(/data: /g) ?? []).length })
    res.on('end', () => { ended = true; resolve() })
    res.on('error', () => resolve())
    res.on('close', () => resolve())
  })
  await new Promise((r) => setTimeout(r, 400))
  const signalled = Date.now()
  process.kill(relay.pid, 'SIGTERM')
  await done
  const cutMs = Date.now() - signalled
  t.ok(cutMs > 8500 && cutMs < 11_500, `the stream was cut ${cutMs} ms after SIGTERM`)
  t.equal(ended && res.complete, false, 'not presented as a complete response (no final chunk)')
  t.ok(events > 10, `${events} events arrived before the cut`)
  t.equal(await relay.exited, 0, 'exit 0: a drain that runs out of grace still exits 0')
})

t.test('H4: a listen port already in use: one line naming the address and the listener, exit 1, no stack', async (t) => {
  const holder = createServer()
  const held = await listenEphemeral(t, holder)
  const dir = t.testdir()
  const agentsPort = await freePort()
  for (const [listener, listen] of [
    ['public', { public: `127.0.0.1:${held}`, agents: `127.0.0.1:${agentsPort}`, admin: false }],
    ['agents', { public: '127.0.0.1:0', agents: `127.0.0.1:${held}`, admin: false }],
  ] as const) {
    const file = join(dir, `${listener}.yaml`)
    writeYaml(file, { domain: 'localhost', listen, agents: {} })
    const res = await runCli('relay', ['serve', '-c', file])
    const out = res.stdout + res.stderr
    t.equal(res.code, 1, `${listener}: exit 1`)
    t.match(out, new RegExp(`EADDRINUSE|in use`), `${listener}: says the address is in use`)
    t.match(out, new RegExp(`127\\.0\\.0\\.1:${held}`), `${listener}: names the address`)
    t.match(out, new RegExp(listener), `${listener}: names the listener`)
    t.notMatch(out, /\n\s+at /, `${listener}: no stack trace`)
  }
  t.equal(await probePort(agentsPort, 100), 'refused', 'the listener that did bind was closed again')
})

t.test('H8: check on a good file exits 0, on a bad one 1 with every issue; it binds nothing', async (t) => {
  const dir = t.testdir()
  const port = await freePort()
  const good = join(dir, 'good.yaml')
  writeYaml(good, { domain: 'localhost', listen: { public: `127.0.0.1:${port}`, agents: '127.0.0.1:0', admin: false }, agents: {} })
  const ok = await runCli('relay', ['check', '-c', good])
  t.equal(ok.code, 0, ok.stderr)
  t.match(ok.stdout, /good\.yaml: ok/)
  const bad = join(dir, 'bad.yaml')
  writeYaml(bad, { domain: 'localhost', listen_adress: ':443', listen: { public: '127.0.0.1:70000' }, agents: {} })
  const no = await runCli('relay', ['check', '-c', bad])
  t.equal(no.code, 1)
  t.match(no.stderr, /^PL_ERR_CONFIG_INVALID: /)
  t.match(no.stderr, /listen_adress/)
  t.match(no.stderr, /listen\.public/)
  t.notMatch(no.stderr, /\n\s+at /, 'no stack trace')
  t.equal(await probePort(port, 100), 'refused', 'check bound nothing')
})
