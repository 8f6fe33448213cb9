import { EventEmitter, once } from 'node:events'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { WebSocket, WebSocketServer } from 'ws'
import { MuxSession, websocketDuplex, type MuxStream } from '../../src/mux/index.js'
import { closeQuietly, collect, echoCheck, echoStreams, waitFor, type Teardown } from './helpers.js'

const MAX_PAYLOAD_BYTES = 4 * 1024 * 1024

/** A ws server on loopback; resolves with both ends of one connection, wrapped before 'open'. */
async function wsSessions(t: Teardown, clientOpts: { keepAliveIntervalMs?: number; keepAliveTimeoutMs?: number } = {}): Promise<{ client: MuxSession; server: MuxSession; clientWs: WebSocket; serverWs: WebSocket }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: MAX_PAYLOAD_BYTES, perMessageDeflate: false })
  await once(wss, 'listening')
  t.teardown(() => wss.close())
  const accepted = new Promise<{ server: MuxSession; serverWs: WebSocket }>((resolve) => {
    wss.once('connection', (serverWs) => {
      // Wrapped synchronously in the handler, so no early message is missed.
      resolve({ serverWs, server: new MuxSession(websocketDuplex(serverWs), { role: 'server', keepAliveIntervalMs: 0 }) })
    })
  })
  const clientWs = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, { maxPayload: MAX_PAYLOAD_BYTES, perMessageDeflate: false })
  const client = new MuxSession(websocketDuplex(clientWs), { role: 'client', keepAliveIntervalMs: 0, ...clientOpts })
  const { server, serverWs } = await accepted
  await once(clientWs, 'open')
  t.teardown(() => {
    closeQuietly(client)
    closeQuietly(server)
  })
  return { client, server, clientWs, serverWs }
}

t.test('sha256 echo on 8 streams over a real WebSocket', async (t) => {
  const { client, server } = await wsSessions(t)
  echoStreams(server)
  const { sent, echoed } = await echoCheck(client, 8, 3 * 1024 * 1024, 50_000)
  t.same(echoed, sent)
  await waitFor(() => client.streamCount === 0 && server.streamCount === 0, 2_000, 'released')
  t.equal(server.streamCount, 0)
})

t.test('issue: frames the server sends right after the upgrade are not lost', async (t) => {
  // The relay opens a stream the moment the agent connects; the agent wraps before 'open'.
  for (let round = 0; round < 5; round++) {
    const { client, server } = await wsSessions(t)
    const s = server.open()
    s.end('first words')
    const [inbound] = (await once(client, 'stream')) as [MuxStream]
    t.equal((await collect(inbound)).toString(), 'first words')
  }
})

t.test('ws terminate(): every stream on both sides errors, both sessions close', async (t) => {
  const { client, server, clientWs } = await wsSessions(t)
  const inbound: MuxStream[] = []
  server.on('stream', (s) => inbound.push(s))
  const streams = Array.from({ length: 4 }, () => client.open())
  streams.forEach((s) => s.write('x'))
  await waitFor(() => inbound.length === 4, 2_000, 'streams opened')
  const codes = Promise.all([...streams, ...inbound].map((s) => once(s, 'error').then(([e]) => (e as { code: string }).code)))
  clientWs.terminate()
  t.same(await codes, Array(8).fill('PL_ERR_MUX_CLOSED'))
  await waitFor(() => client.closed && server.closed, 2_000, 'both sessions closed')
  t.equal(client.streamCount + server.streamCount, 0)
})

t.test('a peer that stops answering is detected by the keepalive over ws', async (t) => {
  const { client, serverWs } = await wsSessions(t, { keepAliveIntervalMs: 50, keepAliveTimeoutMs: 200 })
  serverWs.pause() // the relay process hangs: its socket is no longer read
  const [err] = (await once(client, 'close')) as [{ code: string }]
  t.equal(err.code, 'PL_ERR_MUX_TIMEOUT')
})

/** A stand-in for ws.WebSocket: records sends, lets the test drive bufferedAmount and callbacks. */
class FakeWs extends EventEmitter {
  readyState = 1
  bufferedAmount = 0
  isPaused = false
  sent: Buffer[] = []
  callbacks: Array<(err?: Error) => void> = []
  closedWith: string | null = null
  send(data: Buffer, _opts: unknown, cb: (err?: Error) => void): void {
    this.sent.push(data)
    this.callbacks.push(cb)
  }
  pause(): void {
    this.isPaused = true
  }
  resume(): void {
    this.isPaused = false
  }
  close(code: number): void {
    this.closedWith = `close ${code}`
    this.readyState = 2
  }
  terminate(): void {
    this.closedWith = 'terminate'
    this.readyState = 3
  }
}

const asWs = (fake: FakeWs): WebSocket => fake as unknown as WebSocket

t.test('websocketDuplex: small writes of one batch become one message, big ones are not copied', async (t) => {
  const fake = new FakeWs()
  const d = websocketDuplex(asWs(fake))
  const big = Buffer.alloc(64 * 1024, 7)
  d.cork()
  d.write(Buffer.from('aa', 'hex'))
  d.write(Buffer.from('bbbb', 'hex'))
  d.write(big)
  d.write(Buffer.from('cc', 'hex'))
  d.uncork()
  await new Promise((r) => setImmediate(r))
  t.same(fake.sent.map((b) => b.length), [3, 64 * 1024, 1])
  t.equal(fake.sent[0]!.toString('hex'), 'aabbbb')
  t.equal(fake.sent[1], big, 'the same buffer object: no copy')
})

t.test('websocketDuplex: a chunk over maxMessageBytes is cut, small ones packed up to the limit', async (t) => {
  const fake = new FakeWs()
  const d = websocketDuplex(asWs(fake), { maxMessageBytes: 40 * 1024 })
  d.write(Buffer.alloc(100 * 1024, 1))
  await new Promise((r) => setImmediate(r))
  t.same(fake.sent.map((b) => b.length), [40 * 1024, 40 * 1024, 20 * 1024])
  fake.callbacks.splice(0).forEach((cb) => cb())
  d.cork()
  for (let i = 0; i < 5; i++) d.write(Buffer.alloc(10 * 1024, i))
  d.uncork()
  await new Promise((r) => setImmediate(r))
  t.same(fake.sent.slice(3).map((b) => b.length), [40 * 1024, 10 * 1024])
})

t.test('websocketDuplex: a write completes only once bufferedAmount is under the mark', async (t) => {
  const fake = new FakeWs()
  const d = websocketDuplex(asWs(fake), { highWaterMarkBytes: 1000 })
  fake.bufferedAmount = 5000
  let done = false
  d.write(Buffer.alloc(10), () => (done = true))
  await new Promise((r) => setImmediate(r))
  t.equal(done, false, 'held while the socket is backed up')
  fake.callbacks[0]!() // sent, but still too much queued
  await new Promise((r) => setImmediate(r))
  t.equal(done, false)
  fake.bufferedAmount = 900
  d.write(Buffer.alloc(1)) // queued behind the first write
  fake.callbacks[0]!()
  await new Promise((r) => setImmediate(r))
  t.equal(done, true, 'released on a send callback once under the mark')
  t.equal(fake.sent.length, 2)
})

t.test('websocketDuplex: a full read buffer pauses the socket, reading resumes it', async (t) => {
  const fake = new FakeWs()
  const d = websocketDuplex(asWs(fake), { highWaterMarkBytes: 1024 })
  fake.emit('message', Buffer.alloc(600))
  t.equal(fake.isPaused, false)
  fake.emit('message', Buffer.alloc(600))
  t.equal(fake.isPaused, true, 'over the mark: TCP backpressure through ws.pause()')
  t.equal((d.read() as Buffer).length, 1200)
  await new Promise((r) => setImmediate(r))
  t.equal(fake.isPaused, false)
})

t.test('websocketDuplex: close ends the readable side; destroy closes or terminates the socket', async (t) => {
  const fake = new FakeWs()
  const d = websocketDuplex(asWs(fake))
  const ended = once(d, 'end')
  d.resume()
  fake.emit('message', Buffer.from('x'))
  fake.emit('close', 1000)
  await ended
  t.pass('end after close')

  const graceful = new FakeWs()
  websocketDuplex(asWs(graceful)).destroy()
  t.equal(graceful.closedWith, 'close 1000')

  const abrupt = new FakeWs()
  const d2 = websocketDuplex(asWs(abrupt))
  d2.on('error', () => {})
  d2.destroy(new Error('boom'))
  t.equal(abrupt.closedWith, 'terminate')

  const failing = new FakeWs()
  const d3 = websocketDuplex(asWs(failing))
  const [err] = (await Promise.all([once(d3, 'error'), Promise.resolve(failing.emit('error', new Error('socket hang up')))]))[0] as [Error]
  t.equal(err.message, 'socket hang up')
})

t.test('websocketDuplex: the messages of one batch leave in one socket write', async (t) => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false })
  await once(wss, 'listening')
  t.teardown(() => wss.close())
  const received: Buffer[] = []
  wss.once('connection', (serverWs) => serverWs.on('message', (data: Buffer) => received.push(data)))
  const clientWs = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, { perMessageDeflate: false })
  const d = websocketDuplex(clientWs)
  await once(clientWs, 'open')
  t.teardown(() => clientWs.terminate())
  const socket = (clientWs as unknown as { _socket: { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void } })._socket
  let writes = 0
  for (const method of ['_write', '_writev'] as const) {
    const original = socket[method].bind(socket)
    socket[method] = (...args: unknown[]) => { writes++; original(...args) }
  }
  // A frame header, its body, another header and body: four messages.
  d.cork()
  d.write(Buffer.alloc(12, 1))
  d.write(Buffer.alloc(64 * 1024, 2))
  d.write(Buffer.alloc(12, 3))
  d.write(Buffer.alloc(64 * 1024, 4))
  d.uncork()
  await waitFor(() => received.length === 4, 2_000, 'four messages')
  t.equal(writes, 1, 'one writev for the four messages')
  t.same(received.map((b) => [b.length, b[0]]), [[12, 1], [64 * 1024, 2], [12, 3], [64 * 1024, 4]])
})
