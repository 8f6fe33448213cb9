import { once } from 'node:events'
import { Duplex } from 'node:stream'
import t from 'tap'
import { encodeHeader } from '../../src/mux/codec.js'
import { Flag, FrameType, GoAwayCode } from '../../src/mux/frames.js'
import { MuxSession, type MuxStream } from '../../src/mux/index.js'
import { collect, rawPeer, waitFor, type RawFrame } from './helpers.js'

const KiB = 1024
const { Data, WindowUpdate, Ping, GoAway } = FrameType
const { SYN, ACK, FIN, RST } = Flag

const dataBytes = (frames: RawFrame[], id: number): number => frames.filter((f) => f.type === Data && f.streamId === id).reduce((n, f) => n + f.length, 0)
const settle = (ms = 30): Promise<void> => new Promise((r) => setTimeout(r, ms))

t.test('an inbound SYN is ACKed at once, before the application reads', async (t) => {
  const peer = rawPeer(t)
  peer.session.on('stream', () => {}) // accepted but never read
  peer.send(WindowUpdate, SYN, 1, 0)
  const ack = await peer.waitFrame((f) => f.type === WindowUpdate && (f.flags & ACK) !== 0, 'ACK')
  t.same({ id: ack.streamId, flags: ack.flags, delta: ack.length }, { id: 1, flags: ACK, delta: 0 })
})

t.test('a larger initial window is announced on ACK and on SYN', async (t) => {
  const peer = rawPeer(t, { initialWindowBytes: 1024 * KiB })
  peer.session.on('stream', () => {})
  peer.send(WindowUpdate, SYN, 1, 0)
  const ack = await peer.waitFrame((f) => (f.flags & ACK) !== 0)
  t.equal(ack.length, 768 * KiB)
  const s = peer.session.open()
  const syn = await peer.waitFrame((f) => (f.flags & SYN) !== 0 && f.type === WindowUpdate)
  t.same({ id: syn.streamId, delta: syn.length }, { id: s.id, delta: 768 * KiB })
  t.equal(s.id, 2, 'the server role opens even ids')
})

t.test('send window: stops at 256 KiB, resumes on WINDOW_UPDATE, no polling', async (t) => {
  const peer = rawPeer(t)
  const accepted = once(peer.session, 'stream') as Promise<[MuxStream]>
  peer.send(WindowUpdate, SYN, 1, 0)
  const [s] = await accepted
  const payload = Buffer.alloc(300 * KiB, 1)
  const writeDone = new Promise<void>((r) => s.write(payload, () => r()))
  await waitFor(() => dataBytes(peer.frames, 1) === 256 * KiB, 2_000, 'one window of data')
  await settle(50)
  t.equal(dataBytes(peer.frames, 1), 256 * KiB, 'nothing beyond the window while blocked')
  peer.send(WindowUpdate, 0, 1, 10 * KiB)
  await waitFor(() => dataBytes(peer.frames, 1) === 266 * KiB, 2_000, 'exactly the update')
  peer.send(WindowUpdate, 0, 1, 100 * KiB)
  await writeDone
  await waitFor(() => dataBytes(peer.frames, 1) === 300 * KiB, 2_000, 'the rest')
  t.equal(dataBytes(peer.frames, 1), 300 * KiB)
})

t.test('the window delta carried on a SYN is honoured', async (t) => {
  const peer = rawPeer(t)
  const accepted = once(peer.session, 'stream') as Promise<[MuxStream]>
  peer.send(WindowUpdate, SYN, 1, 768 * KiB) // peer offers a 1 MiB window
  const [s] = await accepted
  s.write(Buffer.alloc(2048 * KiB, 2))
  await waitFor(() => dataBytes(peer.frames, 1) === 1024 * KiB, 2_000, '1 MiB sent')
  await settle(50)
  t.equal(dataBytes(peer.frames, 1), 1024 * KiB)
  const sizes = peer.frames.filter((f) => f.type === Data).map((f) => f.length)
  t.ok(Math.max(...sizes) <= 256 * KiB, `frames cut to the send quantum (max ${Math.max(...sizes)})`)
})

t.test('round-robin: two busy streams interleave their frames', async (t) => {
  const peer = rawPeer(t)
  const streams: MuxStream[] = []
  peer.session.on('stream', (s) => streams.push(s))
  peer.send(WindowUpdate, SYN, 1, 4096 * KiB)
  peer.send(WindowUpdate, SYN, 3, 4096 * KiB)
  await waitFor(() => streams.length === 2)
  streams[0]!.write(Buffer.alloc(2048 * KiB, 1))
  streams[1]!.write(Buffer.alloc(2048 * KiB, 2))
  await waitFor(() => dataBytes(peer.frames, 1) + dataBytes(peer.frames, 3) === 4096 * KiB, 3_000, 'all data')
  const order = peer.frames.filter((f) => f.type === Data).map((f) => f.streamId)
  t.same(order.slice(0, 6), [1, 3, 1, 3, 1, 3])
})

t.test('receive credit is returned only as the reader consumes', async (t) => {
  const peer = rawPeer(t)
  const accepted = once(peer.session, 'stream') as Promise<[MuxStream]>
  peer.send(Data, SYN, 1, 256 * KiB, Buffer.alloc(256 * KiB, 3))
  const [s] = await accepted
  await settle(50)
  const updates = (): RawFrame[] => peer.frames.filter((f) => f.type === WindowUpdate && f.streamId === 1 && f.flags === 0)
  t.equal(updates().length, 0, 'no credit while nobody reads')
  t.equal(s.readableLength, 256 * KiB)
  const first = s.read(100 * KiB) as Buffer
  t.equal(first.length, 100 * KiB)
  await settle(30)
  t.equal(updates().length, 0, 'less than half a window consumed: still no update')
  s.read(100 * KiB)
  const wu = await peer.waitFrame((f) => f.type === WindowUpdate && f.streamId === 1 && f.flags === 0, 'window update')
  t.ok(wu.length >= 200 * KiB, `credit for what was read (${wu.length})`)
})

t.test('a peer exceeding the receive window gets GoAway(protocol error) and the session closes', async (t) => {
  const peer = rawPeer(t)
  let errorEvents = 0
  peer.session.on('error', () => errorEvents++)
  peer.session.on('stream', (s) => s.on('error', () => {}))
  const closed = once(peer.session, 'close')
  peer.send(Data, SYN, 1, 256 * KiB, Buffer.alloc(256 * KiB))
  peer.send(Data, 0, 1, 1, Buffer.alloc(1))
  const [err] = (await closed) as [{ code: string; message: string }]
  t.equal(err.code, 'PL_ERR_PROTO_BAD_FRAME')
  t.match(err.message, /stream 1 exceeded its receive window by 1 bytes/)
  const goaway = await peer.waitFrame((f) => f.type === GoAway)
  t.equal(goaway.length, GoAwayCode.ProtocolError)
  t.equal(errorEvents, 0, 'no error event on the session')
})

t.test('a DATA frame above maxFrameBytes closes the session before any payload is read', async (t) => {
  const peer = rawPeer(t, { maxFrameBytes: 1024 })
  const closed = once(peer.session, 'close')
  peer.send(Data, SYN, 1, 1025) // header only: the length alone is enough to refuse
  const [err] = (await closed) as [{ code: string }]
  t.equal(err.code, 'PL_ERR_PROTO_FRAME_TOO_LARGE')
  t.equal((await peer.waitFrame((f) => f.type === GoAway)).length, GoAwayCode.ProtocolError)
})

// SECURITY A12: malformed mux frames (this file's protocol-error, unknown-stream, ping-flood, window and zero-length cases; fuzz.test.ts runs the property test).
t.test('bad version, wrong SYN parity and a duplicate SYN are protocol errors', async (t) => {
  const cases: Array<[string, (p: ReturnType<typeof rawPeer>) => void, RegExp]> = [
    ['bad version', (p) => p.sendBytes(Buffer.from('010000000000000100000000', 'hex')), /unsupported yamux version 1/],
    ['SYN with our parity', (p) => p.send(WindowUpdate, SYN, 2, 0), /peer opened stream 2 with our parity/],
    ['SYN on stream 0', (p) => p.send(WindowUpdate, SYN, 0, 0), /peer opened stream 0/],
    ['duplicate SYN', (p) => (p.send(WindowUpdate, SYN, 1, 0), p.send(WindowUpdate, SYN, 1, 0)), /SYN for open stream 1/],
  ]
  for (const [name, act, message] of cases) {
    const peer = rawPeer(t)
    peer.session.on('stream', (s) => s.on('error', () => {}))
    const closed = once(peer.session, 'close')
    act(peer)
    const [err] = (await closed) as [Error]
    t.match(err.message, message, name)
  }
})

t.test('frames for unknown streams are ignored; the session stays up', async (t) => {
  const peer = rawPeer(t)
  peer.send(Data, 0, 99, 5, Buffer.from('stray'))
  peer.send(WindowUpdate, 0, 101, 1000)
  peer.send(WindowUpdate, RST, 103, 0)
  peer.send(Ping, SYN, 0, 42)
  const pong = await peer.waitFrame((f) => f.type === Ping)
  t.same({ flags: pong.flags, opaque: pong.length }, { flags: ACK, opaque: 42 })
  t.equal(peer.session.closed, false)
  t.equal(peer.frames.length, 1, 'nothing but the pong was sent')
})

t.test('a ping flood gets a bounded number of answers and no error', async (t) => {
  const peer = rawPeer(t)
  const flood = Buffer.concat(Array.from({ length: 1_000 }, (_, i) => Buffer.from(`000200010000000000${(i + 1).toString(16).padStart(6, '0')}`, 'hex')))
  peer.sendBytes(flood)
  await settle(50)
  const pongs = peer.frames.filter((f) => f.type === Ping)
  t.equal(pongs.length, 64)
  t.same(pongs.slice(0, 3).map((f) => f.length), [1, 2, 3], 'opaque values echoed')
  t.equal(peer.session.closed, false)
  // An answer to a ping we never sent is ignored.
  peer.send(Ping, ACK, 0, 12345)
  await settle()
  t.equal(peer.session.closed, false)
})

t.test('SYN+data+FIN in one frame: data delivered, then end; ACK and FIN|ACK flags as a bitmask', async (t) => {
  const peer = rawPeer(t)
  const bodies: string[] = []
  peer.session.on('stream', async (s) => {
    bodies.push((await collect(s)).toString())
    s.end('bye')
  })
  peer.send(Data, SYN | FIN, 1, 5, Buffer.from('hello'))
  await waitFor(() => bodies.length === 1)
  t.same(bodies, ['hello'])
  const reply = await peer.waitFrame((f) => f.type === Data && f.streamId === 1)
  t.equal(reply.payload.toString(), 'bye')
  await peer.waitFrame((f) => f.streamId === 1 && (f.flags & FIN) !== 0, 'FIN')
  await waitFor(() => peer.session.streamCount === 0)
  t.equal(peer.session.streamCount, 0)

  // Our own stream, answered with ACK|FIN in a single window update.
  const s = peer.session.open()
  const ended = collect(s)
  await peer.waitFrame((f) => f.streamId === s.id && (f.flags & SYN) !== 0)
  peer.send(WindowUpdate, ACK | FIN, s.id, 0)
  t.equal((await ended).length, 0)
  s.end()
  await waitFor(() => peer.session.streamCount === 0)
  t.equal(peer.session.streamCount, 0)
})

t.test('data after the peer FIN resets that stream only', async (t) => {
  const peer = rawPeer(t)
  const errors: string[] = []
  peer.session.on('stream', (s) => {
    s.on('error', (e: { code?: string }) => errors.push(e.code ?? ''))
    s.resume()
  })
  peer.send(Data, SYN | FIN, 1, 1, Buffer.from('a'))
  peer.send(Data, 0, 1, 1, Buffer.from('b'))
  const rst = await peer.waitFrame((f) => f.streamId === 1 && (f.flags & RST) !== 0, 'RST')
  t.equal(rst.type, WindowUpdate)
  t.same(errors, ['PL_ERR_PROTO_BAD_FRAME'])
  t.equal(peer.session.closed, false)
})

t.test('a peer RST on a DATA frame destroys the stream with PL_ERR_MUX_STREAM_RESET', async (t) => {
  const peer = rawPeer(t)
  const accepted = once(peer.session, 'stream') as Promise<[MuxStream]>
  peer.send(Data, SYN, 1, 2, Buffer.from('hi'))
  const [s] = await accepted
  const err = once(s, 'error')
  peer.send(Data, RST, 1, 0)
  t.equal(((await err)[0] as { code: string }).code, 'PL_ERR_MUX_STREAM_RESET')
  t.equal(peer.session.streamCount, 0)
})

t.test('after our GoAway an inbound SYN is refused with RST; the GoAway code reaches the peer', async (t) => {
  const peer = rawPeer(t)
  peer.session.on('stream', () => t.fail('no stream expected'))
  peer.session.goAway()
  peer.session.goAway() // once only
  peer.send(WindowUpdate, SYN, 1, 0)
  const rst = await peer.waitFrame((f) => f.streamId === 1)
  t.equal(rst.flags, RST)
  t.same(peer.frames.filter((f) => f.type === GoAway).map((f) => f.length), [GoAwayCode.Normal])
  const codes: number[] = []
  peer.session.on('goaway', (c) => codes.push(c))
  peer.send(GoAway, 0, 0, GoAwayCode.InternalError)
  await waitFor(() => codes.length === 1)
  t.same(codes, [2])
})

t.test('a peer that floods SYNs without reading cannot grow our output without bound', async (t) => {
  // A transport whose writes never complete: everything the session writes stays buffered.
  const stuck = new Duplex({ read() {}, write() {} })
  const session = new MuxSession(stuck, { role: 'server', keepAliveIntervalMs: 0, maxStreams: 1, maxSessionBufferBytes: 4096 })
  t.teardown(() => session.close())
  session.on('stream', (s) => s.on('error', () => {}))
  const closed = once(session, 'close')
  const syns = (from: number): Buffer => Buffer.concat(Array.from({ length: 500 }, (_, i) => encodeHeader(WindowUpdate, SYN, from + 2 * i, 0)))
  stuck.push(syns(1)) // one accepted, 499 refused with RST: ~6 KB written, never drained
  await settle()
  t.equal(session.closed, false)
  t.ok(stuck.writableLength > 4096, `our output is stuck at ${stuck.writableLength} bytes`)
  stuck.push(syns(1001))
  const [err] = (await closed) as [{ code: string; message: string }]
  t.equal(err.code, 'PL_ERR_PROTO_BAD_FRAME')
  t.equal(err.message, 'protocol error: peer does not read its side of the link')
})

t.test('a WINDOW_UPDATE pushing the send window past 2^32-1 resets that stream only', async (t) => {
  const peer = rawPeer(t)
  const errors: string[] = []
  peer.session.on('stream', (s) => s.on('error', (e: Error) => errors.push(e.message)))
  peer.send(WindowUpdate, SYN, 1, 0xffff_0000) // 256 KiB + almost 4 GiB
  const rst = await peer.waitFrame((f) => f.streamId === 1 && (f.flags & RST) !== 0, 'RST')
  t.equal(rst.type, WindowUpdate)
  t.same(errors, ['protocol error: send window overflow on stream 1'])
  t.equal(peer.session.closed, false)
  t.equal(peer.session.streamCount, 0)
})

t.test('100k zero-length DATA frames and a junk GoAway code are survived', async (t) => {
  const peer = rawPeer(t)
  const codes: number[] = []
  peer.session.on('goaway', (c) => codes.push(c))
  peer.session.on('stream', (s) => s.resume().on('error', () => {}))
  peer.send(WindowUpdate, SYN, 1, 0)
  peer.sendBytes(Buffer.concat(Array.from({ length: 100_000 }, () => encodeHeader(Data, 0, 1, 0))))
  peer.send(GoAway, 0, 0, 0xdead_beef)
  await waitFor(() => codes.length === 1)
  t.same(codes, [0xdead_beef])
  t.equal(peer.session.closed, false)
  t.equal(peer.session.streamCount, 1)
})
