import { once } from 'node:events'
import t from 'tap'
import { MuxSession, type MuxStream } from '../../src/mux/index.js'
import { collect, memoryPair, rawPeer, sessionPair, tcpPair, waitFor } from './helpers.js'

t.test('half-close: request, FIN, then the response on the same stream', async (t) => {
  const { client, server } = sessionPair(t, memoryPair())
  server.on('stream', async (s) => {
    const request = await collect(s) // ends on the client's FIN
    t.equal(s.readableEnded, true)
    s.end(`echo:${request.toString()}`) // writing still allowed after the remote FIN
  })
  const s = client.open()
  s.end('ping')
  t.equal((await collect(s)).toString(), 'echo:ping')
  await waitFor(() => client.streamCount === 0 && server.streamCount === 0, 2_000, 'both sides released')
  t.equal(client.streamCount, 0)
  t.equal(server.streamCount, 0)
})

t.test('reading continues after our own FIN', async (t) => {
  const { client, server } = sessionPair(t, memoryPair())
  server.on('stream', (s) => {
    s.once('end', () => {
      // The client has already half-closed; several writes later still arrive.
      s.write('a')
      setTimeout(() => s.end('b'), 20)
    })
    s.resume()
  })
  const s = client.open()
  s.end()
  t.equal((await collect(s)).toString(), 'ab')
})

t.test('destroy() sends RST and the peer stream errors with PL_ERR_MUX_STREAM_RESET', async (t) => {
  const { client, server } = sessionPair(t, memoryPair())
  const serverSide = once(server, 'stream') as Promise<[MuxStream]>
  const s = client.open()
  s.write('hello')
  const [peer] = await serverSide
  const peerError = once(peer, 'error')
  s.destroy()
  const [err] = (await peerError) as [{ code: string; stack?: string }]
  t.equal(err.code, 'PL_ERR_MUX_STREAM_RESET')
  // The peer's decision, not a fault here: no stack is captured (it cost ~9% of an agent's CPU).
  t.notMatch(err.stack ?? '', /\n\s+at /, 'the reset error carries no stack frames')
  await waitFor(() => client.streamCount === 0 && server.streamCount === 0, 2_000, 'released after reset')
  t.equal(server.streamCount, 0)
  t.equal(client.closed, false, 'a reset stream leaves the session alone')
})

t.test('destroy(err) on the accepting side resets the opener too', async (t) => {
  const { client, server } = sessionPair(t, memoryPair())
  server.on('stream', (s) => {
    s.on('error', () => {})
    s.destroy(new Error('refused by handler'))
  })
  const s = client.open()
  s.write('x')
  const [err] = (await once(s, 'error')) as [{ code: string }]
  t.equal(err.code, 'PL_ERR_MUX_STREAM_RESET')
  await waitFor(() => client.streamCount === 0, 2_000)
  t.equal(client.streamCount, 0)
})

t.test('transport destroyed: every stream errors, close is emitted once with an error', async (t) => {
  const [a, b] = await tcpPair(t)
  const { client, server } = sessionPair(t, [a, b])
  server.on('stream', (s) => s.on('error', () => {}))
  const streams = Array.from({ length: 5 }, () => client.open())
  const errors = streams.map((s) => once(s, 'error').then(([e]) => (e as { code: string }).code))
  for (const s of streams) s.write('x')
  await waitFor(() => server.streamCount === 5, 2_000, 'streams opened')
  let closes = 0
  let closeErr: unknown
  client.on('close', (err) => {
    closes++
    closeErr = err
  })
  a.destroy()
  t.same(await Promise.all(errors), Array(5).fill('PL_ERR_MUX_CLOSED'))
  await waitFor(() => server.closed, 2_000, 'the peer notices')
  client.close() // idempotent
  await new Promise((r) => setTimeout(r, 20))
  t.equal(closes, 1)
  t.equal((closeErr as { code: string }).code, 'PL_ERR_MUX_CLOSED')
  t.equal(client.closed, true)
  t.equal(client.streamCount, 0)
  t.equal(server.streamCount, 0)
  t.throws(() => client.open(), { code: 'PL_ERR_MUX_CLOSED' }, 'open() throws to the caller after close')
})

t.test('close() sends GoAway, ends the transport and errors open streams', async (t) => {
  const { client, server } = sessionPair(t, memoryPair())
  const codes: number[] = []
  server.on('goaway', (code) => codes.push(code))
  server.on('stream', (s) => s.on('error', () => {}))
  const s = client.open()
  const err = once(s, 'error')
  client.close()
  t.equal(((await err)[0] as { code: string }).code, 'PL_ERR_MUX_CLOSED')
  await waitFor(() => server.closed, 2_000, 'peer closed on transport end')
  t.same(codes, [0], 'normal GoAway reached the peer before the end')
})

t.test('keepalive: a silent peer closes the session with PL_ERR_MUX_TIMEOUT', async (t) => {
  const [a, silent] = memoryPair()
  silent.resume() // swallows everything, never answers
  const session = new MuxSession(a, { role: 'client', keepAliveIntervalMs: 40, keepAliveTimeoutMs: 150 })
  t.teardown(() => session.close())
  // The keepalive timers are unref()'d and a memory pipe holds no handle: keep the loop alive.
  const hold = setTimeout(() => {}, 5_000)
  t.teardown(() => clearTimeout(hold))
  const s = session.open()
  const streamErr = once(s, 'error')
  const started = Date.now()
  const [err] = (await once(session, 'close')) as [{ code: string; message: string }]
  const elapsed = Date.now() - started
  t.equal(err.code, 'PL_ERR_MUX_TIMEOUT')
  t.equal(err.message, 'keepalive timed out after 150 ms')
  t.ok(elapsed >= 140 && elapsed < 1_000, `closed after ${elapsed} ms`)
  t.equal(((await streamErr)[0] as { code: string }).code, 'PL_ERR_MUX_TIMEOUT')
})

t.test('keepalive: an idle but healthy pair stays open, lastActivityMs advances', async (t) => {
  const opts = { keepAliveIntervalMs: 40, keepAliveTimeoutMs: 500 }
  const { client, server } = sessionPair(t, memoryPair(), opts)
  const before = client.lastActivityMs
  await new Promise((r) => setTimeout(r, 700)) // longer than the timeout: only pings keep it up
  t.equal(client.closed, false)
  t.equal(server.closed, false)
  t.ok(client.lastActivityMs > before, 'pongs count as activity')
  t.ok(Date.now() - client.lastActivityMs < 500)
})

t.test('ping() measures a round trip; pending pings reject on close', async (t) => {
  const { client, server } = sessionPair(t, memoryPair())
  const rtt = await client.ping()
  t.type(rtt, 'number')
  t.ok(rtt >= 0 && rtt < 1_000, `rtt ${rtt} ms`)
  t.equal(client.roundTripMs, rtt)
  t.ok((await server.ping()) >= 0)
  const [a, silent] = memoryPair()
  silent.resume()
  const lonely = new MuxSession(a, { role: 'client', keepAliveIntervalMs: 0 })
  const pending = lonely.ping()
  lonely.close()
  await t.rejects(pending, { code: 'PL_ERR_MUX_CLOSED' })
  await t.rejects(lonely.ping(), { code: 'PL_ERR_MUX_CLOSED' })
})

t.test('GoAway from the server: client open() throws, existing streams finish', async (t) => {
  const { client, server } = sessionPair(t, memoryPair())
  server.on('stream', async (s) => s.end(await collect(s)))
  const accepted = once(server, 'stream')
  const before = client.open()
  before.write('still ')
  await accepted // a SYN that reaches the server after its GoAway would be refused
  const goaway = once(client, 'goaway')
  server.goAway()
  t.same(await goaway, [0])
  t.throws(() => client.open(), { code: 'PL_ERR_MUX_GOAWAY' })
  t.throws(() => server.open(), { code: 'PL_ERR_MUX_GOAWAY' }, 'the side that sent GoAway does not open either')
  before.end('works')
  t.equal((await collect(before)).toString(), 'still works')
  t.equal(client.closed, false)
})

t.test('GoAway from the client: server open() throws', async (t) => {
  const { client, server } = sessionPair(t, memoryPair())
  const goaway = once(server, 'goaway')
  client.goAway(2)
  t.same(await goaway, [2])
  t.throws(() => server.open(), { code: 'PL_ERR_MUX_GOAWAY' })
})

t.test('stream id exhaustion: GoAway to the peer, the error goes to open()', async (t) => {
  const { client, server } = sessionPair(t, memoryPair())
  server.on('stream', (s) => s.resume().on('error', () => {}))
  client.setNextStreamIdForTesting(0xffff_fffd)
  const a = client.open().on('error', () => {})
  const b = client.open().on('error', () => {})
  t.same([a.id, b.id], [0xffff_fffd, 0xffff_ffff], 'the last odd ids are still usable')
  const goaway = once(server, 'goaway')
  t.throws(() => client.open(), { code: 'PL_ERR_MUX_IDS_EXHAUSTED' })
  t.same(await goaway, [0])
  t.throws(() => client.open(), { code: 'PL_ERR_MUX_GOAWAY' })
  // Streams opened before exhaustion keep working.
  b.end('done')
  await waitFor(() => server.streamCount === 2, 2_000)
  t.equal(server.streamCount, 2)
})

t.test('stream id exhaustion on the server side (even ids)', async (t) => {
  const { server } = sessionPair(t, memoryPair())
  server.setNextStreamIdForTesting(0xffff_fffe)
  const last = server.open()
  last.on('error', () => {})
  t.equal(last.id, 0xffff_fffe)
  t.throws(() => server.open(), { code: 'PL_ERR_MUX_IDS_EXHAUSTED' })
})

t.test('maxStreams: open() throws locally, an inbound SYN beyond the limit gets RST', async (t) => {
  const { client, server } = sessionPair(t, memoryPair(), { maxStreams: 3 }, { maxStreams: 2 })
  server.on('stream', (s) => s.resume().on('error', () => {}))
  const s1 = client.open()
  const s2 = client.open()
  const s3 = client.open()
  t.throws(() => client.open(), { code: 'PL_ERR_MUX_STREAM_LIMIT', message: 'too many concurrent streams (limit 3)' })
  const [err] = (await once(s3, 'error')) as [{ code: string }]
  t.equal(err.code, 'PL_ERR_MUX_STREAM_RESET', 'third stream refused by the server')
  t.equal(server.streamCount, 2)
  s1.destroy()
  s2.destroy()
  await waitFor(() => client.streamCount === 0 && server.streamCount === 0, 2_000)
  const s4 = client.open().on('error', () => {})
  s4.end('again')
  await waitFor(() => server.streamCount === 1, 2_000, 'room again after streams ended')
  t.equal(server.streamCount, 1)
})

t.test('acceptBacklog: streams wait for a listener; beyond the backlog they are reset', async (t) => {
  const { client, server } = sessionPair(t, memoryPair(), {}, { acceptBacklog: 2 })
  const opened = [client.open(), client.open(), client.open()]
  opened.forEach((s, i) => s.end(`stream ${i}`))
  const [err] = (await once(opened[2]!, 'error')) as [{ code: string }]
  t.equal(err.code, 'PL_ERR_MUX_STREAM_RESET')
  t.equal(server.streamCount, 2, 'two streams held for later')
  const bodies: string[] = []
  server.on('stream', async (s) => {
    bodies.push((await collect(s)).toString())
    s.end()
  })
  await waitFor(() => bodies.length === 2, 2_000, 'backlog delivered')
  t.same(bodies, ['stream 0', 'stream 1'])
  await waitFor(() => server.streamCount === 0 && client.streamCount === 0, 2_000)
  t.equal(server.streamCount, 0)
})

t.test('session close with unaccepted backlog streams raises nothing unhandled', async (t) => {
  const { client, server } = sessionPair(t, memoryPair())
  const s = client.open()
  s.on('error', () => {})
  s.write('waiting')
  await waitFor(() => server.streamCount === 1, 2_000)
  server.close()
  await once(server, 'close')
  t.equal(server.streamCount, 0)
})

t.test('onStream option receives inbound streams', async (t) => {
  const seen: number[] = []
  const { client } = sessionPair(t, memoryPair(), {}, { onStream: (s) => seen.push(s.on('error', () => {}).id) })
  client.open().on('error', () => {}).end()
  client.open().on('error', () => {}).end()
  await waitFor(() => seen.length === 2, 2_000)
  t.same(seen, [1, 3])
})

t.test('keepalive: an unanswered ping is given up after one interval and pinging goes on', async (t) => {
  const peer = rawPeer(t, { role: 'client', keepAliveIntervalMs: 30, keepAliveTimeoutMs: 0 })
  const hold = setTimeout(() => {}, 5_000)
  t.teardown(() => clearTimeout(hold))
  // The peer never answers: each interval still sends a fresh PING with a new opaque value.
  await waitFor(() => peer.frames.filter((f) => f.type === 2).length >= 3, 2_000, 'three pings')
  const opaques = peer.frames.filter((f) => f.type === 2).map((f) => f.length)
  t.equal(new Set(opaques).size, opaques.length, 'each ping is new')
  const pending = peer.session.ping()
  await t.rejects(pending, { code: 'PL_ERR_MUX_TIMEOUT' }, 'a ping nobody answers is rejected by the keepalive')
  t.equal(peer.session.closed, false, 'no timeout configured, so the session lives on')
})

t.test('maxInboundOpensPerSecond: opens beyond the rate get RST, one throttled event per window, room again a second later', async (t) => {
  const { client, server } = sessionPair(t, memoryPair(), {}, { maxInboundOpensPerSecond: 5 })
  server.on('stream', (s) => s.resume().on('error', () => {}))
  const throttled: number[] = []
  server.on('throttled', (perSecond: number) => throttled.push(perSecond))
  const resets: string[] = []
  for (let i = 0; i < 12; i++) {
    const s = client.open()
    s.on('error', (err: { code?: string }) => resets.push(err.code ?? 'error'))
    s.write('x')
  }
  await waitFor(() => resets.length >= 7 && server.streamCount >= 5, 2_000, 'refusals arrived')
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(resets, Array.from({ length: 7 }, () => 'PL_ERR_MUX_STREAM_RESET'), '7 of 12 refused with RST')
  t.equal(server.streamCount, 5, '5 accepted')
  t.equal(server.refusedOpens, 7)
  t.same(throttled, [5], 'one event for the whole burst')
  await new Promise((resolve) => setTimeout(resolve, 1_050))
  const later = client.open().on('error', () => {})
  later.end('y')
  await waitFor(() => server.streamCount === 6 || server.refusedOpens > 7, 2_000)
  t.equal(server.refusedOpens, 7, 'a new second, a new allowance')
  t.equal(server.streamCount, 6)
})
