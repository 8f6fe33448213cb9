import t from 'tap'
import { echoCheck, echoStreams, memoryPair, sessionPair, tcpPair, waitFor } from './helpers.js'

// Frames must survive any re-cutting of the byte stream (a WebSocket or TCP gives no boundaries).
const cases: Array<{ chunkBytes: number; streamBytes: number }> = [
  { chunkBytes: 1, streamBytes: 24 * 1024 },
  { chunkBytes: 7, streamBytes: 200 * 1024 },
  { chunkBytes: 100, streamBytes: 1024 * 1024 },
  { chunkBytes: 4096, streamBytes: 1024 * 1024 },
  { chunkBytes: 65536, streamBytes: 1024 * 1024 },
  { chunkBytes: 1024 * 1024, streamBytes: 2 * 1024 * 1024 },
]

for (const { chunkBytes, streamBytes } of cases) {
  t.test(`sha256 echo on 8 streams, transport re-cut into ${chunkBytes}-byte chunks`, async (t) => {
    const { client, server } = sessionPair(t, memoryPair(chunkBytes))
    echoStreams(server)
    // An odd write size so frames and chunks never line up.
    const { sent, echoed } = await echoCheck(client, 8, streamBytes, 7919)
    t.same(echoed, sent)
    await waitFor(() => client.streamCount === 0 && server.streamCount === 0, 2_000, 'streams released')
    t.equal(client.streamCount, 0)
    t.equal(server.streamCount, 0)
  })
}

t.test('sha256 echo on 8 streams over a raw TCP socket pair', async (t) => {
  const { client, server } = sessionPair(t, await tcpPair(t))
  echoStreams(server)
  const { sent, echoed } = await echoCheck(client, 8, 4 * 1024 * 1024, 100_000)
  t.same(echoed, sent)
  await waitFor(() => client.streamCount === 0 && server.streamCount === 0, 2_000, 'streams released')
  t.equal(server.streamCount, 0)
})

t.test('streams opened by the server side echo too (even ids)', async (t) => {
  const { client, server } = sessionPair(t, memoryPair(4096))
  echoStreams(client)
  const first = server.open()
  const second = server.open()
  t.same([first.id, second.id], [2, 4])
  first.destroy()
  second.destroy()
  const { sent, echoed } = await echoCheck(server, 4, 300_000)
  t.same(echoed, sent)
})
