import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import type { Duplex } from 'node:stream'
import t from 'tap'
import { MuxSession, type MuxStream } from '../../src/mux/index.js'
import { closeQuietly, collect, echoCheck, echoStreams, sha256, tcpPair, waitFor, type Teardown } from './helpers.js'
import { oracleDuplex, oracleMuxer, type OracleMuxer, type OracleStream } from './libp2p-oracle.js'

/** Our session on one end of a TCP pair, @chainsafe/libp2p-yamux on the other. */
async function mixedPair(t: Teardown, ours: 'client' | 'server'): Promise<{ session: MuxSession; oracle: OracleMuxer; oracleSocket: Duplex }> {
  const [a, b] = await tcpPair(t)
  const session = new MuxSession(a, { role: ours, keepAliveIntervalMs: 0 })
  const oracle = await oracleMuxer(b, ours === 'client' ? 'server' : 'client')
  t.teardown(() => {
    closeQuietly(session)
    oracle.abort(new Error('test over'))
  })
  return { session, oracle, oracleSocket: b }
}

/** The oracle echoes every inbound stream. */
function oracleEcho(oracle: OracleMuxer): void {
  oracle.addEventListener('stream', (evt) => {
    const d = oracleDuplex(evt.detail)
    d.on('error', () => {})
    d.pipe(d)
  })
}

async function writeAndCollect(d: Duplex, data: Buffer): Promise<Buffer> {
  const reply = collect(d)
  for (let o = 0; o < data.length; o += 100_000) if (!d.write(data.subarray(o, o + 100_000))) await once(d, 'drain')
  d.end()
  return reply
}

t.test('our client, libp2p server: sha256 echo on 8 streams', async (t) => {
  const { session, oracle } = await mixedPair(t, 'client')
  oracleEcho(oracle)
  const { sent, echoed } = await echoCheck(session, 8, 2 * 1024 * 1024, 65_536)
  t.same(echoed, sent)
  await waitFor(() => session.streamCount === 0, 2_000, 'released')
  t.equal(session.streamCount, 0)
})

t.test('libp2p client, our server: sha256 echo on 8 streams', async (t) => {
  const { session, oracle } = await mixedPair(t, 'server')
  echoStreams(session)
  const inputs = Array.from({ length: 8 }, () => randomBytes(2 * 1024 * 1024))
  const replies = await Promise.all(inputs.map(async (data) => writeAndCollect(oracleDuplex(await oracle.createStream()), data)))
  t.same(replies.map(sha256), inputs.map(sha256))
  await waitFor(() => session.streamCount === 0, 2_000, 'released')
  t.equal(session.streamCount, 0)
})

t.test('stream ids: the libp2p client opens odd ids, our server even ones', async (t) => {
  const { session, oracle } = await mixedPair(t, 'server')
  const ids: number[] = []
  session.on('stream', (s) => {
    ids.push(s.id)
    s.on('error', () => {})
  })
  oracleDuplex(await oracle.createStream()).end('a')
  oracleDuplex(await oracle.createStream()).end('b')
  await waitFor(() => ids.length === 2)
  t.same(ids, [1, 3])
  const inbound = new Promise<OracleStream>((resolve) => oracle.addEventListener('stream', (evt) => resolve(evt.detail)))
  const mine = session.open()
  mine.on('error', () => {})
  mine.write('hello')
  const theirs = oracleDuplex(await inbound)
  const [chunk] = (await once(theirs, 'data')) as [Buffer]
  t.equal(chunk.toString(), 'hello')
  t.equal(mine.id, 2)
})

t.test('half-close both ways with libp2p', async (t) => {
  const { session, oracle } = await mixedPair(t, 'client')
  oracle.addEventListener('stream', (evt) => {
    const d = oracleDuplex(evt.detail)
    d.on('error', () => {})
    void collect(d).then((req) => d.end(`got ${req.length} bytes`)) // answers after our FIN
  })
  const s = session.open()
  s.end(Buffer.alloc(1000))
  t.equal((await collect(s)).toString(), 'got 1000 bytes')
})

t.test('resets cross in both directions', async (t) => {
  const { session, oracle } = await mixedPair(t, 'client')
  const theirClose = new Promise<Error | undefined>((resolve) => {
    oracle.addEventListener('stream', (evt) => evt.detail.addEventListener('close', (e) => resolve(e.error)))
  })
  const s = session.open()
  s.write('x')
  await new Promise((r) => setTimeout(r, 20))
  s.destroy()
  const err = await theirClose
  t.ok(err, 'libp2p saw the stream reset')
  t.match(String(err?.name), /Reset/)

  const { session: server, oracle: client } = await mixedPair(t, 'server')
  const accepted = once(server, 'stream') as Promise<[MuxStream]>
  const theirs = await client.createStream()
  theirs.send(Buffer.from('y'))
  const [ours] = await accepted
  const ourErr = once(ours, 'error')
  theirs.abort(new Error('abort from libp2p'))
  t.equal(((await ourErr)[0] as { code: string }).code, 'PL_ERR_MUX_STREAM_RESET')
})

t.test('ping both ways and GoAway to libp2p', async (t) => {
  const { session, oracle } = await mixedPair(t, 'client')
  const rtt = await session.ping()
  t.ok(rtt >= 0 && rtt < 1_000, `ping answered by libp2p in ${rtt.toFixed(2)} ms`)
  const theirRtt = await (oracle as unknown as { ping: () => Promise<number> }).ping()
  t.ok(theirRtt >= 0 && theirRtt < 1_000, 'libp2p ping answered by us')
  session.goAway()
  await new Promise((r) => setTimeout(r, 50))
  await t.rejects(oracle.createStream(), 'libp2p refuses new streams after our GoAway')
  t.equal(session.closed, false)
})

t.test('libp2p closing its muxer sends GoAway; its connection closing ends our session', async (t) => {
  const { session, oracle, oracleSocket } = await mixedPair(t, 'server')
  const goaway = once(session, 'goaway')
  await oracle.close() // GoAway only: libp2p leaves the connection to its owner
  t.same(await goaway, [0])
  t.throws(() => session.open(), { code: 'PL_ERR_MUX_GOAWAY' })
  const closed = once(session, 'close')
  oracleSocket.end()
  const [err] = (await closed) as [{ code: string }]
  t.equal(err.code, 'PL_ERR_MUX_CLOSED')
  t.equal(session.closed, true)
})
