// Relay SIGHUP applies to live sessions (issue 10): a host or TCP port withdrawn from an agent's
// policy stops serving within 1 s while its other sites serve on, a rotated token_sha256 closes
// the session, and a removed agent's names are released for another agent to claim.
import t from 'tap'
import { randomToken, sha256Hex } from './harness/config.js'
import { startHttpOrigin } from './harness/origins.js'
import { startAgent, startRelay } from './harness/processes.js'
import { freePort } from './harness/ports.js'
import { probePort } from './harness/tcp.js'
import { visit } from './harness/visitor.js'
import { pollUntil } from './harness/wait.js'

const who = (port: number, host: string): Promise<{ status: number; text: string }> =>
  visit(port, { host, path: '/who', timeoutMs: 2000 }).catch((err: Error) => ({ status: 0, text: err.message }))

t.test('a shrunk hosts and tcp_ports policy stops the withdrawn host and port within 1 s; the kept site serves on', async t => {
  const origin = await startHttpOrigin(t, { '/who': (req, res) => res.end(`site ${String(req.headers['x-forwarded-host'])}`) })
  const tcpPort = await freePort()
  const relay = await startRelay(t, { agents: { laptop: { hosts: ['keep.localhost', 'drop.localhost'], tcp_ports: [tcpPort] } } })
  const agent = await startAgent(t, relay, {
    tunnels: [{ http: 'keep', to: origin.url }, { http: 'drop', to: origin.url }, { tcp: tcpPort, to: `127.0.0.1:${origin.port}` }],
  })
  const [session] = await relay.connectedAgents()
  t.equal((await who(relay.publicPort, 'drop.localhost')).text, 'site drop.localhost')
  t.equal(await probePort(tcpPort, 100), 'open', 'the TCP port listens')

  relay.config.agents['laptop']!.hosts = ['keep.localhost']
  relay.config.agents['laptop']!.tcp_ports = []
  relay.writeConfig()
  const signalled = Date.now()
  process.kill(relay.pid, 'SIGHUP')
  const dropped = await pollUntil(() => who(relay.publicPort, 'drop.localhost'), r => r.status === 404 || r.status === 503, { timeoutMs: 3000, intervalMs: 20 })
  const droppedMs = Date.now() - signalled
  t.ok(dropped.value.status === 404 || dropped.value.status === 503, `the withdrawn host answers ${dropped.value.status}`)
  t.ok(droppedMs <= 1000, `withdrawn host stopped serving ${droppedMs} ms after SIGHUP (limit 1000)`)
  const closed = await pollUntil(() => probePort(tcpPort, 50), p => p === 'refused', { timeoutMs: 3000, intervalMs: 20 })
  const closedMs = Date.now() - signalled
  t.equal(closed.value, 'refused', 'the withdrawn TCP port stopped listening')
  t.ok(closedMs <= 1000 + 200, `withdrawn port closed ${closedMs} ms after SIGHUP (limit 1000, probe slack 200)`)
  t.equal((await who(relay.publicPort, 'keep.localhost')).text, 'site keep.localhost', 'the kept site still serves')
  const [after] = await relay.connectedAgents()
  t.equal(after?.session, session?.session, 'the same session throughout')
  await agent.waitForLine(/withdrawn by a relay config reload/, 3000, 'the agent is told which tunnels were withdrawn')
  t.match(agent.stderr(), /tunnel drop withdrawn by a relay config reload: host drop\.localhost is not allowed for agent laptop/)
})

t.test('a rotated token_sha256 closes the live session; the agent with the old token is refused (exit 1)', async t => {
  const origin = await startHttpOrigin(t, { '/who': (_req, res) => res.end('laptop') })
  const relay = await startRelay(t)
  const agent = await startAgent(t, relay, { tunnels: [{ http: 'rot', to: origin.url }] })
  t.equal((await who(relay.publicPort, 'rot.localhost')).text, 'laptop')
  relay.config.agents['laptop']!.token_sha256 = sha256Hex(randomToken())
  relay.writeConfig()
  process.kill(relay.pid, 'SIGHUP')
  const line = await relay.waitForLog(l => l['msg'] === 'relay config reload: closing agent session', 3000, 'relay closes the session')
  t.equal(line['reason'], 'agent token changed in relay config')
  const gone = await pollUntil(() => relay.connectedAgents(), list => list.length === 0, { timeoutMs: 2000 })
  t.same(gone.value, [], 'no session left')
  t.not((await who(relay.publicPort, 'rot.localhost')).status, 200, 'the host no longer serves')
  const code = await Promise.race([agent.exited, new Promise<string>(resolve => setTimeout(() => resolve('still running'), 10_000))])
  t.equal(code, 1, 'the agent stops with exit 1 (its token is refused on reconnect)')
  t.match(agent.stderr(), /PL_ERR_AUTH_BAD_TOKEN/)
})

t.test('a removed agent\'s session is closed and its names can be claimed by another agent', async t => {
  const mine = await startHttpOrigin(t, { '/who': (_req, res) => res.end('laptop') })
  const theirs = await startHttpOrigin(t, { '/who': (_req, res) => res.end('desktop') })
  const relay = await startRelay(t, { agents: { laptop: { hosts: ['*.localhost'] }, desktop: { hosts: ['*.localhost'] } } })
  const laptop = await startAgent(t, relay, { name: 'laptop', tunnels: [{ http: 'shared', to: mine.url }] })
  t.equal((await who(relay.publicPort, 'shared.localhost')).text, 'laptop')
  // While laptop holds it, desktop cannot take the name.
  const early = await startAgent(t, relay, { name: 'desktop', tunnels: [{ http: 'shared', to: theirs.url }], forwarding: 0, waitFor: /PL_ERR_POLICY_HOST_IN_USE/ })
  await early.kill('SIGTERM')

  delete relay.config.agents['laptop']
  relay.writeConfig()
  process.kill(relay.pid, 'SIGHUP')
  await relay.waitForLog(l => l['msg'] === 'relay config reload: closing agent session' && l['agent'] === 'laptop', 3000, 'laptop session closed')
  const code = await Promise.race([laptop.exited, new Promise<string>(resolve => setTimeout(() => resolve('still running'), 10_000))])
  t.equal(code, 1, 'the removed agent is refused and exits 1')
  const released = await pollUntil(() => who(relay.publicPort, 'shared.localhost'), r => r.status === 404, { timeoutMs: 2000 })
  t.equal(released.value.status, 404, 'the removed agent\'s name is no longer reserved')

  const desktop = await startAgent(t, relay, { name: 'desktop', tunnels: [{ http: 'shared', to: theirs.url }] })
  t.same(desktop.urls, [`http://shared.localhost:${relay.publicPort}`], 'another agent claims the released name')
  t.equal((await who(relay.publicPort, 'shared.localhost')).text, 'desktop')
})
