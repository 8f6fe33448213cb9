import t, { type Test } from 'tap'
import { createHash } from 'node:crypto'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { TcpHead, readHead } from '@porchlight/shared/protocol'
import { parseProxyHeader } from '@porchlight/shared/net'
import { TcpTunnelListener, type TcpTunnelOptions } from '../../src/visitors/tcp.js'
import { handleTcpStream, type TcpTunnelTarget } from '../../../agent/src/tunnels/tcp.js'
import { captureLogger, hashUntilEnd, patternBytes, readAll, sha256, streamPair, waitFor } from '../../../shared/test/net/helpers.js'

/** A local service behind the agent: echoes, or runs a custom handler; counts connections. */
async function startOrigin(t: Test, onSocket?: (s: Socket) => void): Promise<{ port: number; count: () => number; sockets: Socket[] }> {
  const sockets: Socket[] = []
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket)
    socket.on('error', () => undefined)
    if (onSocket) onSocket(socket)
    else socket.pipe(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { port: (server.address() as AddressInfo).port, count: () => sockets.length, sockets }
}

interface Harness {
  listener: TcpTunnelListener
  port: number
  heads: TcpHead[]
  opened: () => number
  lines: ReturnType<typeof captureLogger>['lines']
}

/** Relay listener wired to the agent handler through an in-memory stream pair per connection. */
async function startTunnel(t: Test, target: TcpTunnelTarget, extra: Partial<TcpTunnelOptions> = {}): Promise<Harness> {
  const { log, lines } = captureLogger()
  const heads: TcpHead[] = []
  let opened = 0
  const listener = new TcpTunnelListener({
    host: '127.0.0.1',
    port: 0,
    tunnelId: target.id,
    agent: 'laptop',
    allowIps: [],
    log,
    openStream: (): Duplex => {
      opened++
      const [relayEnd, agentEnd] = streamPair()
      readHead(agentEnd, 5_000).then((value) => {
        const head = TcpHead.parse(value)
        heads.push(head)
        handleTcpStream(agentEnd, head, target, log)
      }, () => agentEnd.destroy())
      return relayEnd
    },
    ...extra,
  })
  const port = await listener.listen()
  t.teardown(() => listener.close())
  return { listener, port, heads, opened: () => opened, lines }
}

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
    s.once('connect', () => resolve(s)).once('error', reject)
  })
}

/** Resolves with ms until the peer closed the connection (FIN or RST), or rejects after timeoutMs. */
function closedWithin(socket: Socket, timeoutMs: number): Promise<number> {
  const started = Date.now()
  socket.on('error', () => undefined)
  socket.resume()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`socket still open after ${timeoutMs} ms`)), timeoutMs)
    const done = (): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(Date.now() - started)
    }
    // The clients here are half-open capable, so a FIN shows up as 'end', a reset as 'close'.
    socket.once('end', done)
    socket.once('close', done)
  })
}

const tunnelTo = (port: number, proxy: 'v1' | 'v2' | null = null): TcpTunnelTarget => ({
  kind: 'tcp', id: 'tcp:2222', to: { host: '127.0.0.1', port }, proxy_protocol: proxy,
})

t.test('20 MB each way through relay port -> stream -> agent -> echo service, hashed', async (t) => {
  let originHash = ''
  const origin = await startOrigin(t, (socket) => {
    const hash = createHash('sha256')
    socket.on('data', (chunk: Buffer) => hash.update(chunk))
    socket.on('end', () => { originHash = hash.digest('hex') })
    socket.pipe(socket)
  })
  const h = await startTunnel(t, tunnelTo(origin.port))
  const payload = patternBytes(20 * 1024 * 1024, 7)
  const client = await dial(h.port)
  const clientPort = client.localPort
  const started = process.hrtime.bigint()
  const echoed = hashUntilEnd(client)
  client.end(payload)
  const result = await echoed
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  t.equal(result.bytes, payload.length, 'every byte echoed back')
  t.equal(result.sha256, sha256(payload), 'client got exactly what it sent')
  t.equal(originHash, sha256(payload), 'the service got exactly what the client sent')
  t.comment(`20 MiB echoed (40 MiB moved) in ${ms.toFixed(0)} ms: ${((40 * 1024 * 1024) / 1e6 / (ms / 1000)).toFixed(1)} MB/s`)
  t.equal(h.heads.length, 1)
  const head = h.heads[0]!
  t.equal(head.t, 'tcp')
  t.equal(head.tunnel, 'tcp:2222')
  t.equal(head.remote_address, '127.0.0.1')
  t.equal(head.remote_port, clientPort)
  t.equal(head.local_address, '127.0.0.1')
  t.equal(head.local_port, h.port)
  await waitFor(() => h.listener.connections === 0, 2_000, 'connection released')
  const access = h.lines.find((l) => l.msg === 'tcp connection')
  t.ok(access, 'one access line per connection')
  t.equal(access?.['bytesIn'], payload.length)
  t.equal(access?.['bytesOut'], payload.length)
})

t.test('half-close: the visitor shuts its write side and still receives the whole reply', async (t) => {
  const origin = await startOrigin(t, (socket) => {
    let got = ''
    socket.on('data', (c: Buffer) => { got += c.toString() })
    socket.on('end', () => {
      // Reply only after the visitor's FIN has arrived, in two writes.
      setTimeout(() => {
        socket.write(`221 bye after ${JSON.stringify(got)}\r\n`)
        socket.end('closing\r\n')
      }, 20)
    })
  })
  const h = await startTunnel(t, tunnelTo(origin.port))
  const client = await dial(h.port)
  const reply = readAll(client)
  client.end('QUIT\r\n')
  t.equal(await reply, '221 bye after "QUIT\\r\\n"\r\nclosing\r\n')
})

t.test('allow_ips is checked on the L4 address: outsiders are dropped before any stream opens', async (t) => {
  const origin = await startOrigin(t)
  const denied = await startTunnel(t, tunnelTo(origin.port), { allowIps: ['10.0.0.0/8'] })
  const client = await dial(denied.port)
  const ms = await closedWithin(client, 1_000)
  t.ok(ms < 1_000, `closed in ${ms} ms`)
  t.equal(denied.opened(), 0, 'no stream opened to the agent')
  t.equal(origin.count(), 0, 'the local service saw nothing')
  t.equal(denied.lines.filter((l) => l.msg === 'tcp visitor refused' && l['reason'] === 'allow_ips').length, 1)

  const allowed = await startTunnel(t, tunnelTo(origin.port), { allowIps: ['10.0.0.0/8', '127.0.0.0/8'] })
  const ok = await dial(allowed.port)
  const reply = readAll(ok)
  ok.end('ping')
  t.equal(await reply, 'ping')
})

t.test('an invalid allow_ips entry fails closed: listen() rejects and binds nothing', async (t) => {
  const listener = new TcpTunnelListener({
    host: '127.0.0.1', port: 0, tunnelId: 'x', agent: 'a', allowIps: ['127.0.0.0/8', '127.1'],
    openStream: () => { throw new Error('unused') }, log: captureLogger().log,
  })
  await t.rejects(listener.listen(), { code: 'PL_ERR_PROTO_BAD_MESSAGE', message: /allow_ips entry "127\.1"/ })
  t.equal(listener.port, 0, 'nothing bound')
  await listener.close()
})

t.test('close() destroys live connections and frees the port at once', async (t) => {
  const origin = await startOrigin(t)
  const h = await startTunnel(t, tunnelTo(origin.port))
  const client = await dial(h.port)
  const firstReply = new Promise<string>((resolve) => client.once('data', (c: Buffer) => resolve(c.toString())))
  client.write('hello')
  t.equal(await firstReply, 'hello', 'connection is live')
  t.equal(h.listener.connections, 1)
  const closed = closedWithin(client, 1_000)
  await h.listener.close()
  t.ok((await closed) < 1_000, 'live visitor cut off')
  t.equal(h.listener.connections, 0)
  await waitFor(() => origin.sockets.every((s) => s.destroyed), 1_000, 'origin side torn down')

  const again = await startTunnel(t, tunnelTo(origin.port), { port: h.port })
  t.equal(again.port, h.port, 're-listen on the same port succeeds immediately')
})

t.test('EADDRINUSE becomes PL_ERR_POLICY_PORT_IN_USE', async (t) => {
  const origin = await startOrigin(t)
  const first = await startTunnel(t, tunnelTo(origin.port))
  const second = new TcpTunnelListener({
    host: '127.0.0.1', port: first.port, tunnelId: 'y', agent: 'other', allowIps: [],
    openStream: () => { throw new Error('unused') }, log: captureLogger().log,
  })
  await t.rejects(second.listen(), { code: 'PL_ERR_POLICY_PORT_IN_USE' })
  await second.close()
})

t.test('maxConnections: excess visitors are closed at once, others keep working (SECURITY D8)', async (t) => {
  const origin = await startOrigin(t)
  const h = await startTunnel(t, tunnelTo(origin.port), { maxConnections: 2 })
  const a = await dial(h.port)
  const b = await dial(h.port)
  await waitFor(() => h.listener.connections === 2, 1_000, 'two live')
  const c = await dial(h.port)
  const ms = await closedWithin(c, 1_000)
  t.ok(ms < 1_000, `third closed in ${ms} ms`)
  t.equal(h.opened(), 2)
  const reply = readAll(a)
  a.end('still fine')
  t.equal(await reply, 'still fine')
  b.destroy()
})

t.test('agent offline (openStream throws) or local service down: visitor closed within 1 s', async (t) => {
  const offline = await startTunnel(t, tunnelTo(1), {
    openStream: () => { throw new Error('agent offline') },
  })
  const a = await dial(offline.port)
  t.ok((await closedWithin(a, 1_000)) < 1_000)

  // A port with nothing listening: grab one, then free it.
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const deadPort = (probe.address() as AddressInfo).port
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  const down = await startTunnel(t, tunnelTo(deadPort))
  const b = await dial(down.port)
  t.ok((await closedWithin(b, 1_000)) < 1_000)
  const refused = down.lines.find((l) => l.msg === 'tcp visitor refused by agent')
  t.equal(refused?.['code'], 'PL_ERR_DIAL_FAILED')
  t.equal(down.listener.connections, 0)
})

t.test('PROXY protocol v1 and v2 reach the local service before any payload', async (t) => {
  for (const version of ['v1', 'v2'] as const) {
    const received: Buffer[] = []
    const origin = await startOrigin(t, (socket) => {
      socket.on('data', (c: Buffer) => received.push(c))
      socket.on('end', () => socket.end())
    })
    const h = await startTunnel(t, tunnelTo(origin.port, version))
    const client = await dial(h.port)
    const clientPort = client.localPort
    const done = readAll(client)
    client.end('SSH-2.0-test\r\n')
    await done
    const bytes = Buffer.concat(received)
    const header = parseProxyHeader(bytes)
    t.ok(header, `${version} header parsed`)
    t.equal(header?.version, version === 'v1' ? 1 : 2)
    t.equal(header?.family, 'TCP4')
    t.same(header?.src, { address: '127.0.0.1', port: clientPort })
    t.same(header?.dst, { address: '127.0.0.1', port: h.port })
    t.equal(bytes.subarray(header?.length ?? 0).toString(), 'SSH-2.0-test\r\n', `${version}: payload intact after the header`)
  }
})

t.test('protocol confusion: HTTP and a TLS ClientHello pass through untouched (SECURITY D9)', async (t) => {
  const origin = await startOrigin(t)
  const h = await startTunnel(t, tunnelTo(origin.port))
  const client = await dial(h.port)
  const bytes = Buffer.concat([Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.from('160301020001', 'hex'), Buffer.alloc(512, 0xff)])
  const echoed = hashUntilEnd(client)
  client.end(bytes)
  t.equal((await echoed).sha256, sha256(bytes))
})

t.test('connect-and-close churn leaves no connections or streams behind (SECURITY D6)', async (t) => {
  const origin = await startOrigin(t)
  const h = await startTunnel(t, tunnelTo(origin.port))
  let wrong = 0
  for (let i = 0; i < 200; i++) {
    const c = await dial(h.port)
    const reply = readAll(c)
    c.end('x')
    if ((await reply) !== 'x') wrong++
  }
  t.equal(wrong, 0, 'every cycle echoed its byte')
  await waitFor(() => h.listener.connections === 0, 2_000, 'all released')
  t.equal(h.listener.connections, 0)
  t.equal(h.opened(), 200)
  await waitFor(() => origin.sockets.every((s) => s.destroyed), 2_000, 'origin sockets closed')
  t.equal(origin.sockets.filter((s) => !s.destroyed).length, 0)
})
