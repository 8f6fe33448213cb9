// One laptop, several agent processes (issue 10): each process names itself by an instance id it
// keeps across reconnects, a quick share lets the relay pick its name and asks for the same name
// again after a reconnect, and a taken status API port falls back to the next free one.
import t, { type Test } from 'tap'
import { get as httpGet } from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import type { AgentConfig, AgentTunnel } from '@porchlight/shared/config'
import { buildAgent, INSPECT_PORT_TRIES, type Agent, type InspectEvent } from '../src/agent.js'
import { startFakeRelay, TEST_TOKEN, type FakeRelay } from './helpers/fake-relay.js'
import { memoryLogger } from './helpers/log.js'

const FAST_ENV = { PORCHLIGHT_BACKOFF_MAX_MS: '200' }

function config(relay: FakeRelay, tunnels: AgentTunnel[], inspect: AgentConfig['inspect'] = null): AgentConfig {
  return { relay: relay.url, token: TEST_TOKEN, cert: null, ca: null, tunnels, inspect }
}

function http(id: string): AgentTunnel {
  return { kind: 'http', id, http: id, to: 'http://127.0.0.1:9', host_header: null, access: null }
}

function start(t: Test, agentConfig: AgentConfig, relayPicksName?: ReadonlySet<string>): { agent: Agent; logs: ReturnType<typeof memoryLogger> } {
  const logs = memoryLogger()
  const agent = buildAgent(agentConfig, { log: logs.log, env: FAST_ENV, ...(relayPicksName ? { relayPicksName } : {}) })
  t.teardown(() => agent.stop(0))
  return { agent, logs }
}

t.test('each process sends its own instance id, the same on every reconnect', async (t) => {
  const relay = await startFakeRelay(t)
  const one = start(t, config(relay, [http('a')]))
  const two = start(t, config(relay, [http('b')]))
  await one.agent.start()
  await relay.waitForPublishes(1)
  await two.agent.start()
  await relay.waitForPublishes(2)
  t.equal(relay.upgrades[0]?.instance, one.agent.instance)
  t.equal(relay.upgrades[1]?.instance, two.agent.instance)
  t.match(one.agent.instance, /^[A-Za-z0-9_-]{16}$/, '96 random bits, header-safe')
  t.not(one.agent.instance, two.agent.instance, 'two processes, two instances')

  // The relay drops the link; the agent reconnects and names the same instance.
  relay.lastSession().mux.close()
  relay.sessions[0]!.mux.close()
  await relay.waitForPublishes(4)
  const ids = relay.upgrades.map((u) => u.instance)
  t.equal(ids.length, 4)
  t.same(new Set(ids), new Set([one.agent.instance, two.agent.instance]), 'reconnects reuse the ids')
  t.equal(ids.filter((id) => id === one.agent.instance).length, 2)
})

t.test('a relay-named quick share asks for "*" first and for the name it got on every later publish', async (t) => {
  const relay = await startFakeRelay(t, {
    publish: (tunnels) => tunnels.map((s) => ({ id: s.id, ok: true as const, url: `http://${s.kind === 'http' && s.host === '*' ? 'calm-heron-0a1b.laptop.example.com' : s.kind === 'http' ? s.host : 'x'}:${relay.port}/` })),
  })
  const { agent } = start(t, config(relay, [http('quick')]), new Set(['quick']))
  await agent.start()
  await relay.waitForPublishes(1)
  t.same(relay.lastSession().messages[1], { type: 'publish', tunnels: [{ id: 'quick', kind: 'http', host: '*', origin: { host: '127.0.0.1:9', path: '' } }] })
  relay.lastSession().mux.close()
  await relay.waitForPublishes(2)
  t.same(relay.lastSession().messages[1], { type: 'publish', tunnels: [{ id: 'quick', kind: 'http', host: 'calm-heron-0a1b.laptop.example.com', origin: { host: '127.0.0.1:9', path: '' } }] }, 'the same public name after a reconnect')
})

t.test('a taken status API port falls back to the next free one and says so', async (t) => {
  const relay = await startFakeRelay(t)
  const blocker = net.createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())))
  const taken = (blocker.address() as AddressInfo).port
  const { agent, logs } = start(t, config(relay, [http('a')], { host: '127.0.0.1', port: taken }))
  const events: InspectEvent[] = []
  agent.on('inspect', (e: InspectEvent) => events.push(e))
  await agent.start()
  const bound = agent.inspectAddress
  t.ok(bound !== null && bound.port > taken && bound.port < taken + INSPECT_PORT_TRIES, `bound ${bound?.port} after ${taken}`)
  t.same(events, [{ url: `http://127.0.0.1:${bound?.port}/`, wanted: `127.0.0.1:${taken}`, fallback: true }])
  const warn = logs.lines().find((l) => typeof l['msg'] === 'string' && (l['msg'] as string).includes('is in use'))
  t.equal(warn?.['inspect'], `127.0.0.1:${bound?.port}`, 'the log names the address taken')
  const status = await new Promise<number>((resolve, reject) => {
    // agent: false, so no kept-alive socket holds the status API open at teardown.
    httpGet({ host: '127.0.0.1', port: bound?.port, path: '/api/status', agent: false }, (res) => { res.resume(); resolve(res.statusCode ?? 0) }).on('error', reject)
  })
  t.equal(status, 200, 'the fallback status API answers')
})

t.test('a tunnel refused because another process holds its name is published again later, and served once free', async (t) => {
  let refusals = 2
  const relay = await startFakeRelay(t, {
    publish: (tunnels) => tunnels.map((s) => (s.kind === 'http' && s.host === 'blog' && refusals-- > 0
      ? { id: s.id, ok: false as const, code: 'PL_ERR_POLICY_HOST_TAKEN', message: 'host blog.localhost is served by another running process of agent laptop; stop that process or pick another name' }
      : s.kind === 'http' && s.host === 'never'
        ? { id: s.id, ok: false as const, code: 'PL_ERR_POLICY_HOST_DENIED', message: 'host never.localhost is not allowed for agent laptop' }
        : { id: s.id, ok: true as const, url: `http://${s.kind === 'http' ? s.host : 'x'}.localhost:${relay.port}` })),
  })
  const logs = memoryLogger()
  const agent = buildAgent(config(relay, [http('blog'), http('never')]), { log: logs.log, env: FAST_ENV, rejectedRetryMs: 100 })
  t.teardown(() => agent.stop(0))
  const ready = new Promise<string>((resolve) => agent.on('tunnel', (e: { url: string }) => resolve(e.url)))
  await agent.start()
  t.equal(await ready, `http://blog.localhost:${relay.port}`, 'blog is served once the relay lets it have the name')
  const publishes = relay.lastSession().messages.filter((m) => m.type === 'publish').length
  t.equal(publishes, 3, 'published at connect, then twice more (100 ms, 200 ms)')
  await new Promise((resolve) => setTimeout(resolve, 600))
  t.equal(relay.lastSession().messages.filter((m) => m.type === 'publish').length, 3, 'a policy refusal (retry: false) is not retried')
})
