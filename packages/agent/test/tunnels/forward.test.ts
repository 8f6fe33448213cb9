import t, { type Test } from 'tap'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { ForwardHead, readHead } from '@porchlight/shared/protocol'
import { ForwardListener } from '../../src/tunnels/forward.js'
import { handleForwardStream, type Lookup } from '../../../server/src/visitors/outbound.js'
import { parseOutboundRules } from '../../../server/src/agents/outbound-policy.js'
import { captureLogger, hashUntilEnd, patternBytes, readAll, sha256, streamPair, waitFor } from '../../../shared/test/net/helpers.js'

/** Destination on loopback: an SMTP-ish greeter that echoes lines and says bye after our FIN. */
async function startDestination(t: Test): Promise<{ port: number; count: () => number }> {
  const sockets: Socket[] = []
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket)
    socket.on('error', () => undefined)
    socket.write('220 ready\r\n')
    socket.pipe(socket, { end: false })
    socket.on('end', () => socket.end('221 bye\r\n'))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { port: (server.address() as AddressInfo).port, count: () => sockets.length }
}

interface Setup {
  listener: ForwardListener
  local: { host: string; port: number }
  agentLines: ReturnType<typeof captureLogger>['lines']
  relayLines: ReturnType<typeof captureLogger>['lines']
  opened: () => number
}

/** Agent ForwardListener wired to the relay's handleForwardStream through a stream pair per connection. */
async function startForward(t: Test, to: { host: string; port: number }, outbound: string[], lookup?: Lookup, openStream?: () => Duplex): Promise<Setup> {
  const agentLog = captureLogger()
  const relayLog = captureLogger()
  const rules = parseOutboundRules(outbound)
  let opened = 0
  const listener = new ForwardListener({
    tunnel: { kind: 'forward', id: 'forward:0', forward: { host: '127.0.0.1', port: 0 }, to },
    log: agentLog.log,
    openStream: openStream ?? ((): Duplex => {
      opened++
      const [agentEnd, relayEnd] = streamPair()
      readHead(relayEnd, 5_000).then((value) => {
        const head = ForwardHead.parse(value)
        return handleForwardStream(relayEnd, head, {
          agent: 'laptop', rules, log: relayLog.log, relayOwnAddresses: new Set(), ...(lookup ? { lookup } : {}),
        })
      }, () => relayEnd.destroy())
      return agentEnd
    }),
  })
  const local = await listener.listen()
  t.teardown(() => listener.close())
  return { listener, local, agentLines: agentLog.lines, relayLines: relayLog.lines, opened: () => opened }
}

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
    s.once('connect', () => resolve(s)).once('error', reject)
  })
}

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
    socket.once('end', done)
    socket.once('close', done)
  })
}

t.test('listens on loopback and relays an SMTP-style exchange with half-close (SECURITY D5, D6)', async (t) => {
  const dest = await startDestination(t)
  const f = await startForward(t, { host: '127.0.0.1', port: dest.port }, [`127.0.0.1:${dest.port}`])
  t.equal(f.local.host, '127.0.0.1', 'bound to loopback')
  t.ok(f.local.port > 0)
  t.equal(f.agentLines.filter((l) => l.msg.startsWith('forward listens on a non-loopback')).length, 0, 'no warning for loopback')
  const client = await dial(f.local.port)
  const all = readAll(client)
  client.write('EHLO me\r\n')
  client.end('QUIT\r\n')
  t.equal(await all, '220 ready\r\nEHLO me\r\nQUIT\r\n221 bye\r\n', '221 delivered after the client FIN')
  t.equal(dest.count(), 1)
  await waitFor(() => f.listener.connections === 0, 1_000, 'connection released')
})

t.test('8 MB each way through the forward, hashed', async (t) => {
  const dest = await startDestination(t)
  const f = await startForward(t, { host: '127.0.0.1', port: dest.port }, [`127.0.0.1:${dest.port}`])
  const payload = patternBytes(8 * 1024 * 1024, 3)
  const client = await dial(f.local.port)
  const got = hashUntilEnd(client)
  client.end(payload)
  const expected = Buffer.concat([Buffer.from('220 ready\r\n'), payload, Buffer.from('221 bye\r\n')])
  const result = await got
  t.equal(result.bytes, expected.length)
  t.equal(result.sha256, sha256(expected))
})

t.test('a name-only rule resolving to 127.0.0.1 is refused; the local client is closed within 1 s', async (t) => {
  const dest = await startDestination(t)
  const lookups: string[] = []
  const f = await startForward(t, { host: 'smtp.allowed.test', port: dest.port }, [`smtp.allowed.test:${dest.port}`], async (host) => {
    lookups.push(host)
    return ['127.0.0.1']
  })
  const client = await dial(f.local.port)
  const ms = await closedWithin(client, 1_000)
  t.ok(ms < 1_000, `closed in ${ms} ms`)
  t.same(lookups, ['smtp.allowed.test'])
  t.equal(dest.count(), 0, 'nothing dialled')
  const warn = f.agentLines.find((l) => l.msg === 'forward refused by the relay')
  t.equal(warn?.['code'], 'PL_ERR_POLICY_DEST_DENIED')
  t.equal(warn?.level, 40)
  t.match(String(warn?.['message']), /smtp\.allowed\.test:\d+ is not allowed for agent laptop/)
})

t.test('a destination not in the list is refused and the client closed within 1 s', async (t) => {
  const dest = await startDestination(t)
  const f = await startForward(t, { host: '127.0.0.1', port: dest.port }, ['smtp.example.test:587'])
  const client = await dial(f.local.port)
  t.ok((await closedWithin(client, 1_000)) < 1_000)
  t.equal(dest.count(), 0)
  await waitFor(() => f.listener.connections === 0, 1_000, 'released')
})

t.test('relay link down (openStream throws): the local client is closed at once', async (t) => {
  const f = await startForward(t, { host: '127.0.0.1', port: 1 }, [], undefined, () => { throw new Error('link down') })
  const client = await dial(f.local.port)
  t.ok((await closedWithin(client, 1_000)) < 1_000)
  t.equal(f.agentLines.filter((l) => l.msg === 'forward connection dropped: relay link is down').length, 1)
})

t.test('close() stops accepting; graceMs lets a live session finish first (SECURITY G5)', async (t) => {
  const dest = await startDestination(t)
  const f = await startForward(t, { host: '127.0.0.1', port: dest.port }, [`127.0.0.1:${dest.port}`])
  const client = await dial(f.local.port)
  const greeting = new Promise<string>((resolve) => client.once('data', (c: Buffer) => resolve(c.toString())))
  t.equal(await greeting, '220 ready\r\n')
  const rest = readAll(client)
  const closing = f.listener.close({ graceMs: 2_000 })
  await new Promise((resolve) => setTimeout(resolve, 50))
  await t.rejects(dial(f.local.port), { code: 'ECONNREFUSED' }, 'new connections refused while draining')
  client.end('QUIT\r\n')
  t.equal(await rest, 'QUIT\r\n221 bye\r\n', 'in-flight session completed')
  const started = Date.now()
  await closing
  t.ok(Date.now() - started < 1_000, 'close resolved once the session ended, before the grace ran out')
})

t.test('close() without grace cuts live sessions at once', async (t) => {
  const dest = await startDestination(t)
  const f = await startForward(t, { host: '127.0.0.1', port: dest.port }, [`127.0.0.1:${dest.port}`])
  const client = await dial(f.local.port)
  await new Promise((resolve) => client.once('data', resolve))
  const closed = closedWithin(client, 1_000)
  await f.listener.close()
  t.ok((await closed) < 1_000)
  t.equal(f.listener.connections, 0)
})

t.test('bind failures become PL_ERR_LISTEN', async (t) => {
  const dest = await startDestination(t)
  const f = await startForward(t, { host: '127.0.0.1', port: dest.port }, [])
  const clash = new ForwardListener({
    tunnel: { kind: 'forward', id: 'forward:x', forward: { host: '127.0.0.1', port: f.local.port }, to: { host: 'a.test', port: 25 } },
    log: captureLogger().log,
    openStream: () => { throw new Error('unused') },
  })
  await t.rejects(clash.listen(), { code: 'PL_ERR_LISTEN' })
  await clash.close()
})
