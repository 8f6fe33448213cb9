import t, { type Test } from 'tap'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { ReplyHead, readHead, type TcpHead } from '@porchlight/shared/protocol'
import { parseProxyHeader } from '@porchlight/shared/net'
import { handleTcpStream, type TcpTunnelTarget } from '../../src/tunnels/tcp.js'
import { captureLogger, readAll, streamPair, waitFor } from '../../../shared/test/net/helpers.js'

async function startService(t: Test): Promise<{ port: number; received: Buffer[]; count: () => number; sockets: Socket[] }> {
  const received: Buffer[] = []
  const sockets: Socket[] = []
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket)
    socket.on('error', () => undefined)
    socket.on('data', (c: Buffer) => received.push(c))
    socket.on('end', () => socket.end('bye'))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { port: (server.address() as AddressInfo).port, received, count: () => sockets.length, sockets }
}

const HEAD: TcpHead = { t: 'tcp', tunnel: 'tcp:2222', remote_address: '203.0.113.9', remote_port: 40001, local_address: '198.51.100.1', local_port: 2222 }
const tunnel = (port: number, proxy: 'v1' | 'v2' | null = null): TcpTunnelTarget => ({ kind: 'tcp', id: 'tcp:2222', to: { host: '127.0.0.1', port }, proxy_protocol: proxy })

t.test('dials tunnel.to, answers ok, writes the PROXY v2 header first, then pipes with half-close', async (t) => {
  const svc = await startService(t)
  const [relayEnd, agentEnd] = streamPair()
  handleTcpStream(agentEnd, HEAD, tunnel(svc.port, 'v2'), captureLogger().log)
  t.same(ReplyHead.parse(await readHead(relayEnd, 2_000)), { t: 'ok' })
  const reply = readAll(relayEnd)
  relayEnd.end('payload')
  t.equal(await reply, 'bye')
  const bytes = Buffer.concat(svc.received)
  const header = parseProxyHeader(bytes)
  t.same(header?.src, { address: '203.0.113.9', port: 40001 })
  t.same(header?.dst, { address: '198.51.100.1', port: 2222 })
  t.equal(bytes.subarray(header?.length ?? 0).toString(), 'payload')
})

t.test('a head for another tunnel is refused and nothing is dialled (SECURITY A18)', async (t) => {
  const svc = await startService(t)
  const [relayEnd, agentEnd] = streamPair()
  const { log, lines } = captureLogger()
  handleTcpStream(agentEnd, { ...HEAD, tunnel: 'tcp:22' }, tunnel(svc.port), log)
  const reply = ReplyHead.parse(await readHead(relayEnd, 2_000))
  t.equal(reply.t === 'error' ? reply.code : reply.t, 'PL_ERR_POLICY_NOT_PUBLISHED')
  t.equal(await readAll(relayEnd), '', 'stream ended after the error')
  t.equal(svc.count(), 0, 'the spy service saw no connection')
  t.equal(lines.filter((l) => l.msg === 'relay asked for a tcp tunnel this agent does not publish').length, 1)
})

t.test('local service down -> PL_ERR_DIAL_FAILED with the reason', async (t) => {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const deadPort = (probe.address() as AddressInfo).port
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  const [relayEnd, agentEnd] = streamPair()
  handleTcpStream(agentEnd, HEAD, tunnel(deadPort), captureLogger().log)
  const reply = ReplyHead.parse(await readHead(relayEnd, 2_000))
  t.equal(reply.t, 'error')
  if (reply.t === 'error') {
    t.equal(reply.code, 'PL_ERR_DIAL_FAILED')
    t.match(reply.message, new RegExp(`127\\.0\\.0\\.1:${deadPort}: ECONNREFUSED`))
  }
})

t.test('the relay resetting the stream tears down the local connection', async (t) => {
  const svc = await startService(t)
  const [relayEnd, agentEnd] = streamPair()
  handleTcpStream(agentEnd, HEAD, tunnel(svc.port), captureLogger().log)
  t.same(ReplyHead.parse(await readHead(relayEnd, 2_000)), { t: 'ok' })
  relayEnd.write('partial')
  await waitFor(() => svc.received.length > 0, 1_000, 'bytes at the service')
  relayEnd.on('error', () => undefined)
  relayEnd.destroy()
  await waitFor(() => agentEnd.destroyed, 1_000, 'agent end reset')
  await waitFor(() => svc.sockets.every((s) => s.destroyed), 1_000, 'service connection closed')
  t.equal(svc.sockets.length, 1)
  t.equal(svc.sockets[0]?.destroyed, true)
})
