// Reverse TCP tunnels with the built relay and agent: an SSH-like binary protocol with 100 MB
// hashed both ways and half-close in both directions, PROXY protocol v1/v2 read by the local
// service, allow_ips, the tcp_ports policy, quick mode, and an agent killed and back.
import t from 'tap'
import { writeYaml, type AgentYaml } from './harness/config.js'
import { freePort } from './harness/ports.js'
import { patternSha256 } from './harness/pattern.js'
import { startAgent, startRelay, type AgentProcess } from './harness/processes.js'
import {
  connectTcp, freePortRange, listenOnlySession, MAX_PACKET_PAYLOAD, probePort, sendAndCollect, sshLikeSession,
  SSH_LIKE_CLIENT_BANNER, SSH_LIKE_SERVER_BANNER, startProxyHeaderService, startSshLikeEcho, waitForEnd,
  type EchoConnection,
} from './harness/tcp.js'
import { pollUntil } from './harness/wait.js'

const MB = 1024 * 1024

// One relay for the file; each agent name gets its own slice of one block of free ports.
const echo = await startSshLikeEcho(t)
const proxied = await startProxyHeaderService(t)
const block = await freePortRange(20)
const laptopPorts = [0, 1, 2, 3, 4].map(i => block.from + i)
const [sshPort, proxyV1Port, proxyV2Port, deniedPort, allowedPort] = laptopPorts as [number, number, number, number, number]
const homePort = block.from + 6
const reloadPort = block.from + 7
// Wide enough that the relay picking the same port again by chance is unlikely (1 in 12).
const quickRange = { from: block.from + 8, to: block.from + 19 }
const outsidePort = await freePort() // an ephemeral port: outside every tcp_ports range
const relay = await startRelay(t, {
  agents: {
    laptop: { tcp_ports: [`${block.from}-${block.from + 5}`] },
    homeserver: { tcp_ports: [homePort] },
    reloader: { tcp_ports: [reloadPort] },
    quick: { tcp_ports: [`${quickRange.from}-${quickRange.to}`] },
  },
})
const echoTo = `127.0.0.1:${echo.port}`
const proxyTo = `127.0.0.1:${proxied.port}`
// TunnelYaml has no proxy_protocol key yet; a typed variable passes it through as written.
const tcpTunnels: Array<{ tcp: number; to: string; allow_ips?: string[]; proxy_protocol?: 'v1' | 'v2' }> = [
  { tcp: sshPort, to: echoTo },
  { tcp: proxyV1Port, to: proxyTo, proxy_protocol: 'v1' },
  { tcp: proxyV2Port, to: proxyTo, proxy_protocol: 'v2' },
  { tcp: deniedPort, to: echoTo, allow_ips: ['203.0.113.0/24', '2001:db8::/32'] },
  { tcp: allowedPort, to: echoTo, allow_ips: ['127.0.0.1/32'] },
  { tcp: outsidePort, to: echoTo },
]
const laptop = await startAgent(t, relay, { name: 'laptop', tunnels: tcpTunnels, forwarding: 5, waitFor: /PL_ERR_POLICY_PORT_DENIED/ })

/** The echo service's record of the connection that arrived after `before` were seen. */
function nextConnection(before: number): EchoConnection | undefined {
  return echo.connections[before]
}

/** The port of a `Forwarding tcp://localhost:PORT -> …` line. */
function publicPortOf(agent: AgentProcess, index = 0): number {
  const url = agent.forwarding[index]?.publicUrl ?? ''
  const m = /^tcp:\/\/localhost:(\d+)$/.exec(url)
  return m ? Number(m[1]) : -1
}

t.test('the agent prints one Forwarding line per accepted tcp tunnel; the port outside tcp_ports is refused', async t => {
  const lines = laptop.forwarding.map(f => `${f.publicUrl} -> ${f.localUrl}`).sort()
  t.same(lines, [
    `tcp://localhost:${sshPort} -> ${echoTo}`,
    `tcp://localhost:${proxyV1Port} -> ${proxyTo}`,
    `tcp://localhost:${proxyV2Port} -> ${proxyTo}`,
    `tcp://localhost:${deniedPort} -> ${echoTo}`,
    `tcp://localhost:${allowedPort} -> ${echoTo}`,
  ].sort())
  const rejected = laptop.logs().find(l => l['code'] === 'PL_ERR_POLICY_PORT_DENIED')
  t.equal(rejected?.['tunnel'], `tcp:${outsidePort}`, 'the rejection names the tunnel')
  t.equal(rejected?.['level'], 50, 'logged at error level')
  t.equal(await probePort(outsidePort), 'refused', `nothing listens on ${outsidePort}`)
})

t.test('SSH-like session: 100 MB echoed and hashed both ways, last packet after the client FIN', { timeout: 90_000 }, async t => {
  const size = 100 * MB
  const before = echo.connections.length
  const socket = await connectTcp(sshPort)
  const result = await sshLikeSession(socket, size, 75_000)
  t.comment(`100 MB up and echoed down through the tunnel in ${result.ms} ms`)
  const expectedSha = patternSha256(size)
  const packets = Math.ceil(size / MAX_PACKET_PAYLOAD)
  t.equal(result.serverBanner, SSH_LIKE_SERVER_BANNER, 'the server spoke first and its banner arrived')
  t.equal(result.echoedBytes, size, 'every echoed byte arrived')
  t.equal(result.firstMismatchAt, -1, 'echoed bytes are the pattern at every offset')
  t.equal(result.echoedSha256, expectedSha, 'client-side hash of the echo')
  t.same(result.summary, { packets, bytes: size, sha256: expectedSha }, 'server-side hash, sent after our FIN (half-close)')
  const seen = nextConnection(before)
  t.equal(seen?.clientBanner, SSH_LIKE_CLIENT_BANNER)
  t.equal(seen?.clientEnded, true, 'the server saw our FIN')
  t.equal(seen?.error, null)
  t.equal(seen?.remoteAddress, '127.0.0.1', 'the agent dialled the service on loopback')
  // The relay's per-connection line counts the visitor's bytes exactly.
  const log = await relay.waitForLog(l => l['msg'] === 'tcp connection' && l['tunnel'] === `tcp:${sshPort}`, 5000, 'tcp connection line')
  const eofBytes = 5 + Buffer.byteLength(JSON.stringify(result.summary))
  t.equal(log['bytesIn'], SSH_LIKE_CLIENT_BANNER.length + 2 + packets * 5 + size, 'bytesIn: banner + packets')
  t.equal(log['bytesOut'], SSH_LIKE_SERVER_BANNER.length + 2 + packets * 5 + size + eofBytes, 'bytesOut: banner + echo + EOF packet')
  t.equal(log['agent'], 'laptop')
})

t.test('half-close the other way: the server sends FIN first and still receives 4 MB after it', async t => {
  const size = 4 * MB
  const before = echo.connections.length
  const socket = await connectTcp(sshPort)
  const result = await listenOnlySession(socket, size, 10_000)
  t.equal(result.serverBanner, SSH_LIKE_SERVER_BANNER)
  t.equal(result.serverFinBeforeUpload, true, "the server's FIN reached the visitor before the upload")
  const seen = nextConnection(before)
  await seen?.closed
  t.equal(seen?.error, null)
  t.same(seen?.received, { packets: size / MAX_PACKET_PAYLOAD, bytes: size, sha256: patternSha256(size) }, 'every byte sent after the FIN arrived')
  socket.destroy()
})

t.test('PROXY protocol v1 and v2 headers are parsed by the local service', async t => {
  for (const [version, port] of [[1, proxyV1Port], [2, proxyV2Port]] as const) {
    const before = proxied.connections.length
    const socket = await connectTcp(port)
    const visitorPort = socket.localPort
    const payload = Buffer.from(`payload after a v${version} header \x00\x01\xff\r\n`, 'latin1')
    const answer = await sendAndCollect(socket, payload, 5000)
    const nl = answer.indexOf('\n')
    t.equal(answer.subarray(0, 7).toString(), 'HEADER ', `v${version}: the service parsed a header`)
    const header = JSON.parse(answer.subarray(7, nl).toString()) as Record<string, unknown>
    t.same(header, {
      version,
      family: 'TCP4',
      sourceAddress: '127.0.0.1',
      sourcePort: visitorPort,
      destinationAddress: '127.0.0.1',
      destinationPort: port,
      headerBytes: version === 1 ? Buffer.byteLength(`PROXY TCP4 127.0.0.1 127.0.0.1 ${visitorPort} ${port}\r\n`) : 28,
    }, `v${version}: source is the visitor, destination the relay port`)
    t.ok(answer.subarray(nl + 1).equals(Buffer.from(payload).reverse()), `v${version}: payload after the header intact`)
    t.equal(proxied.connections[before]?.error, null)
  }
})

// SECURITY C8: a TCP expose with an IP allowlist.
t.test('allow_ips: a visitor outside the list is dropped before the agent dials; one inside gets through', async t => {
  const before = echo.connections.length
  t.equal(await probePort(deniedPort, 1000), 'closed-by-peer', 'the denied visitor is closed without a byte')
  const refusal = await relay.waitForLog(l => l['msg'] === 'tcp visitor refused' && l['tunnel'] === `tcp:${deniedPort}`, 5000, 'refusal line')
  t.equal(refusal['reason'], 'allow_ips')
  t.equal(refusal['remote'], '127.0.0.1')
  t.equal(echo.connections.length, before, 'the local service never saw the denied visitor')

  const socket = await connectTcp(allowedPort)
  const result = await sshLikeSession(socket, 64 * 1024, 10_000)
  t.equal(result.echoedSha256, patternSha256(64 * 1024), 'a visitor inside allow_ips is served')
  t.equal(echo.connections.length, before + 1)
})

t.test('quick mode: `porchlight tcp PORT` gets a relay-picked port, --remote-port a chosen one', async t => {
  const picked = await startAgent(t, relay, { name: 'quick', args: ['tcp', String(echo.port)] })
  const port = publicPortOf(picked)
  t.ok(port >= quickRange.from && port <= quickRange.to, `picked ${port} from ${quickRange.from}-${quickRange.to}`)
  t.equal(picked.forwarding[0]?.localUrl, echoTo)
  const first = await sshLikeSession(await connectTcp(port), 256 * 1024, 10_000)
  t.equal(first.echoedSha256, patternSha256(256 * 1024))
  await picked.kill('SIGKILL')
  const gone = await pollUntil(() => probePort(port, 50), r => r === 'refused', { timeoutMs: 2000 })
  t.equal(gone.value, 'refused', `the relay closed ${port} when the agent died (${gone.ms} ms)`)

  // The agent comes back (same agent, same tunnel): the relay listens on the port it picked before.
  const back = await startAgent(t, relay, { name: 'quick', args: ['tcp', String(echo.port)] })
  t.equal(publicPortOf(back), port, 'the relay-picked port is listened on again')
  const again = await sshLikeSession(await connectTcp(port), 1000, 10_000)
  t.equal(again.summary?.bytes, 1000)
  t.equal(await back.kill('SIGTERM'), 0, 'SIGTERM: exit 0')
  const freed = await pollUntil(() => probePort(port, 50), r => r === 'refused', { timeoutMs: 2000 })
  t.equal(freed.value, 'refused', `the relay closed ${port} after the agent left (${freed.ms} ms)`)

  const chosen = await startAgent(t, relay, { name: 'quick', args: ['tcp', echoTo, '--remote-port', String(quickRange.to)] })
  t.same(chosen.forwarding, [{ publicUrl: `tcp://localhost:${quickRange.to}`, localUrl: echoTo }])
  const second = await sshLikeSession(await connectTcp(quickRange.to), 1000, 10_000)
  t.equal(second.summary?.bytes, 1000)
  t.equal(await chosen.kill('SIGTERM'), 0)

  const refused = await startAgent(t, relay, { name: 'quick', args: ['tcp', String(echo.port), '--remote-port', String(outsidePort)], expectExit: true })
  t.equal(await refused.exited, 1, 'a refused port ends a quick mode with exit 1')
  const line = refused.stderr().split('\n').filter(l => l.startsWith('PL_ERR_POLICY_PORT_DENIED: '))
  t.equal(line.length, 1, `one PL_ERR_POLICY_PORT_DENIED line: ${JSON.stringify(line)}`)
  t.match(line[0] ?? '', String(outsidePort))
  t.equal(refused.forwarding.length, 0)
  t.equal(await probePort(outsidePort), 'refused')
})

t.test('agent killed: its port and live connections close within 1 s; back again on the same port', async t => {
  const tunnels = [{ tcp: homePort, to: echoTo }]
  const first = await startAgent(t, relay, { name: 'homeserver', tunnels })
  t.equal(publicPortOf(first), homePort)
  const live = await connectTcp(homePort)
  const banner = await new Promise<string>(resolve => live.once('data', (c: Buffer) => resolve(c.toString('latin1'))))
  t.equal(banner, `${SSH_LIKE_SERVER_BANNER}\r\n`, 'a live session before the kill')

  const ended = waitForEnd(live, 3000)
  const killedAt = Date.now()
  await first.kill('SIGKILL')
  const cut = await ended
  t.not(cut.how, 'timeout', `the live connection was closed (${cut.how})`)
  t.ok(cut.ms < 1000, `live connection closed ${cut.ms} ms after the kill`)
  const closed = await pollUntil(() => probePort(homePort, 50), r => r === 'refused', { timeoutMs: 1000, intervalMs: 20 })
  const closedMs = Date.now() - killedAt
  t.equal(closed.value, 'refused', `port ${homePort} refused`)
  t.ok(closedMs < 1000, `port refused ${closedMs} ms after the kill`)
  live.destroy()

  const second = await startAgent(t, relay, { name: 'homeserver', tunnels })
  t.same(second.forwarding, [{ publicUrl: `tcp://localhost:${homePort}`, localUrl: echoTo }], 'the same port again')
  const again = await sshLikeSession(await connectTcp(homePort), 512 * 1024, 10_000)
  t.equal(again.echoedSha256, patternSha256(512 * 1024), 'and it serves')
})

t.test('SIGHUP with a new allow_ips list: the relay applies it to the port it keeps open', async t => {
  const tunnels = (allowIps: string[]): AgentYaml['tunnels'] => [{ tcp: reloadPort, to: echoTo, allow_ips: allowIps }]
  const agent = await startAgent(t, relay, { name: 'reloader', tunnels: tunnels(['127.0.0.0/8']) })
  const readyLines = (): number => agent.logs().filter(l => l['msg'] === 'tunnel ready' && l['tunnel'] === `tcp:${reloadPort}`).length
  const reload = async (allowIps: string[]): Promise<void> => {
    const before = readyLines()
    const config: AgentYaml = { relay: relay.agentsUrl, token: relay.tokens['reloader'] ?? '', inspect: false, tunnels: tunnels(allowIps) }
    writeYaml(agent.configFile ?? '', config)
    process.kill(agent.pid, 'SIGHUP')
    const done = await pollUntil(async () => readyLines(), n => n > before, { timeoutMs: 5000 })
    t.ok(done.ok, `re-published with allow_ips ${JSON.stringify(allowIps)} (${done.ms} ms)`)
  }
  const live = await connectTcp(reloadPort)
  const banner = await new Promise<string>(resolve => live.once('data', (c: Buffer) => resolve(c.toString('latin1'))))
  t.equal(banner, `${SSH_LIKE_SERVER_BANNER}\r\n`, 'a live connection from 127.0.0.1')

  await reload(['127.0.0.1/32', '203.0.113.0/24'])
  t.equal(await probePort(reloadPort), 'open', 'still allowed under the new list')
  t.equal(live.destroyed || live.readableEnded, false, 'the live connection the new list allows was kept')

  await reload(['203.0.113.0/24'])
  t.equal(await probePort(reloadPort), 'closed-by-peer', '127.0.0.1 is outside the new list: dropped')
  const cut = await waitForEnd(live, 2000)
  t.not(cut.how, 'timeout', `the live connection the new list refuses is cut (${cut.how})`)
  t.same(agent.forwarding.map(f => f.publicUrl), [`tcp://localhost:${reloadPort}`], 'same port throughout, one Forwarding line')
  live.destroy()
})
