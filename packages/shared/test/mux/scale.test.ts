import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import type { MuxSession, MuxStream } from '../../src/mux/index.js'
import { collect, echoStreams, memoryPair, sessionPair, tcpPair, waitFor } from './helpers.js'

// A gc() for heap checks without a command-line flag.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

async function heapAfterGc(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((r) => setImmediate(r))
  }
  return process.memoryUsage().heapUsed
}

/** open, write a few bytes, end, read the echo to its end. */
async function shortStream(client: MuxSession, n: number): Promise<string> {
  const s = client.open()
  s.end(`req ${n}`)
  return (await collect(s)).toString()
}

t.test('10,000 concurrent streams', async (t) => {
  const limits = { maxStreams: 20_000, maxSessionBufferBytes: 64 * 1024 * 1024 }
  const { client, server } = sessionPair(t, await tcpPair(t), limits)
  const held: MuxStream[] = []
  server.on('stream', (s) => {
    held.push(s)
    s.on('error', () => {})
  })
  const streams = Array.from({ length: 10_000 }, () => client.open())
  streams.forEach((s, i) => s.write(`#${i}`))
  await waitFor(() => held.length === 10_000, 20_000, '10k inbound streams')
  t.equal(client.streamCount, 10_000)
  t.equal(server.streamCount, 10_000, 'all 10,000 are live at the same time')
  // Each stream echoes what it got (bytes, not messages: a payload may arrive in pieces).
  for (const s of held) s.pipe(s)
  const replies = await Promise.all(
    streams.map((s) => {
      s.end()
      return collect(s)
    }),
  )
  t.equal(replies.filter((r, i) => r.toString() === `#${i}`).length, 10_000, 'every stream got its own reply')
  await waitFor(() => client.streamCount === 0 && server.streamCount === 0, 10_000, 'all released')
  t.equal(server.streamCount, 0)
})

t.test('20,000 sequential short streams leave no stream behind and the heap flat', async (t) => {
  const { client, server } = sessionPair(t, memoryPair())
  echoStreams(server)
  for (let i = 0; i < 2_000; i++) await shortStream(client, i) // warm up
  const heapBefore = await heapAfterGc()
  let ok = 0
  const started = Date.now()
  for (let i = 0; i < 20_000; i++) if ((await shortStream(client, i)) === `req ${i}`) ok++
  const ms = Date.now() - started
  t.equal(ok, 20_000)
  await waitFor(() => client.streamCount === 0 && server.streamCount === 0, 2_000, 'released')
  t.equal(client.streamCount, 0)
  t.equal(server.streamCount, 0)
  const growth = (await heapAfterGc()) - heapBefore
  t.ok(growth < 2 * 1024 * 1024, `heap grew by ${(growth / 1024).toFixed(0)} KiB over 20k streams`)
  t.comment(`20k sequential streams in ${ms} ms (${Math.round(20_000 / (ms / 1000))}/s)`)
})

t.test('many short streams in parallel batches over TCP', async (t) => {
  const { client, server } = sessionPair(t, await tcpPair(t))
  echoStreams(server)
  let ok = 0
  for (let batch = 0; batch < 20; batch++) {
    const replies = await Promise.all(Array.from({ length: 500 }, (_, i) => shortStream(client, batch * 500 + i)))
    ok += replies.filter((r, i) => r === `req ${batch * 500 + i}`).length
  }
  t.equal(ok, 10_000)
  await waitFor(() => client.streamCount === 0 && server.streamCount === 0, 2_000, 'released')
  t.equal(server.streamCount, 0)
})
