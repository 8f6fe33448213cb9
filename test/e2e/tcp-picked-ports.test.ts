// Relay-picked TCP ports (`porchlight tcp PORT`, no --remote-port) for a homeserver: a picked port
// that another program holds is skipped, and with `state:` the pick survives a relay restart, so
// an SSH config pointing at relay:port keeps working.
import { statSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { patternSha256 } from './harness/pattern.js'
import { startAgent, startRelay, type AgentProcess } from './harness/processes.js'
import { connectTcp, freePortRange, probePort, sshLikeSession, startSshLikeEcho } from './harness/tcp.js'
import { pollUntil } from './harness/wait.js'

function publicPortOf(agent: AgentProcess): number {
  const m = /^tcp:\/\/localhost:(\d+)$/.exec(agent.forwarding[0]?.publicUrl ?? '')
  return m ? Number(m[1]) : -1
}

async function holdPort(t: Test, port: number): Promise<Server> {
  const server = createServer(socket => socket.destroy())
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  return server
}

function release(server: Server): Promise<void> {
  return new Promise(resolve => {
    if (!server.listening) return resolve()
    server.close(() => resolve())
  })
}

t.test('a picked port held by another program is skipped; with state: the pick survives a relay restart', async t => {
  const echo = await startSshLikeEcho(t)
  const range = await freePortRange(5)
  const ports = [0, 1, 2, 3, 4].map(i => range.from + i)
  // Another program holds four of the five ports: a random pick lands on one of them 4 times in 5.
  const holders: Server[] = []
  for (const p of ports.slice(0, 4)) holders.push(await holdPort(t, p))
  const free = ports[4]!
  const stateDir = join(t.testdir(), 'state')
  const relay = await startRelay(t, { agents: { home: { tcp_ports: [`${range.from}-${range.to}`] } }, extra: { state: stateDir } })
  const agent = await startAgent(t, relay, { name: 'home', args: ['tcp', String(echo.port)], env: { PORCHLIGHT_BACKOFF_MAX_MS: '1000' } })
  t.equal(publicPortOf(agent), free, `the relay skipped the taken ports and picked ${free}`)
  const first = await sshLikeSession(await connectTcp(free), 64 * 1024, 10_000)
  t.equal(first.echoedSha256, patternSha256(64 * 1024))
  t.equal(statSync(join(stateDir, 'tcp-ports.json')).mode & 0o777, 0o600, 'the remembered picks are private to the relay')

  // The other program goes away; the relay restarts. The pick is remembered, so even with five
  // free ports to choose from the agent gets its old port back.
  for (const h of holders) await release(h)
  await relay.restart()
  const back = await pollUntil(() => probePort(free, 200), r => r === 'open', { timeoutMs: 10_000, intervalMs: 100 })
  t.equal(back.value, 'open', `${free} listened on again ${back.ms} ms after the restart`)
  const again = await sshLikeSession(await connectTcp(free), 1000, 10_000)
  t.equal(again.summary?.bytes, 1000, 'and it reaches the same local service')
  for (const p of ports.slice(0, 4)) t.equal(await probePort(p, 50), 'refused', `port ${p} was not picked instead`)
})
