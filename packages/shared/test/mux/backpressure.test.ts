import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import t from 'tap'
import type { MuxStream } from '../../src/mux/index.js'
import { memoryPair, sessionPair, waitFor } from './helpers.js'

const KiB = 1024
const MiB = 1024 * KiB
const STREAMS = 50
const BLOCK_BYTES = 64 * KiB
const BLOCKS_PER_STREAM = 64 // 4 MiB per stream, 200 MiB in all
const SESSION_BUFFER_BYTES = 16 * MiB

t.test('paused readers: 200 MiB offered on 50 streams, receiver holds one window each', async (t) => {
  const { client, server } = sessionPair(t, memoryPair(), {}, { maxSessionBufferBytes: SESSION_BUFFER_BYTES })
  const inbound: MuxStream[] = []
  server.on('stream', (s) => inbound.push(s)) // nobody reads yet

  const expected: string[] = []
  const writers: MuxStream[] = []
  const writesDone: Array<Promise<void>> = []
  for (let i = 0; i < STREAMS; i++) {
    const block = randomBytes(BLOCK_BYTES)
    const hash = createHash('sha256')
    for (let b = 0; b < BLOCKS_PER_STREAM; b++) hash.update(block)
    expected.push(hash.digest('hex'))
    const s = client.open()
    writers.push(s)
    writesDone.push(
      (async () => {
        for (let b = 0; b < BLOCKS_PER_STREAM; b++) if (!s.write(block)) await once(s, 'drain')
        s.end()
      })(),
    )
  }

  const buffered = (): number => inbound.reduce((n, s) => n + s.readableLength, 0)
  await waitFor(() => inbound.length === STREAMS && buffered() === STREAMS * 256 * KiB, 10_000, 'every window filled')
  await new Promise((r) => setTimeout(r, 200))
  t.equal(buffered(), STREAMS * 256 * KiB, 'nothing beyond the windows arrives while readers are paused')
  t.same(new Set(inbound.map((s) => s.readableLength)), new Set([256 * KiB]), 'each stream holds exactly its window')
  t.ok(writers.every((s) => s.writableNeedDrain), 'every writer is told to wait')
  const pendingOnSender = writers.reduce((n, s) => n + s.writableLength, 0)
  t.ok(pendingOnSender <= STREAMS * BLOCK_BYTES, `sender queues at most one block per stream (${pendingOnSender})`)

  // Now read everything, sampling how much the receiver holds as the data flows (a memory pipe
  // never yields to timers, so sample from the data handlers themselves).
  let maxBufferedBytes = 0
  let maxWindowSumBytes = 0
  const rssBefore = process.memoryUsage().rss
  let maxRss = rssBefore
  let events = 0
  const sample = (): void => {
    maxBufferedBytes = Math.max(maxBufferedBytes, inbound.reduce((n, s) => n + s.recv.bufferedBytes, 0))
    maxWindowSumBytes = Math.max(maxWindowSumBytes, inbound.reduce((n, s) => n + s.recv.windowBytes, 0))
    if (events % 64 === 0) maxRss = Math.max(maxRss, process.memoryUsage().rss)
  }
  const started = Date.now()
  const hashes = await Promise.all(
    inbound.map(
      (s) =>
        new Promise<string>((resolve, reject) => {
          const hash = createHash('sha256')
          s.on('data', (c: Buffer) => {
            hash.update(c)
            if (++events % 8 === 0) sample()
          })
          s.on('end', () => {
            s.end() // close our direction too, so the stream is released
            resolve(hash.digest('hex'))
          })
          s.on('error', reject)
        }),
    ),
  )
  await Promise.all(writesDone)
  const ms = Date.now() - started
  t.same(hashes, expected, 'every stream intact')
  t.ok(maxBufferedBytes > 0, 'the sampler saw data in flight')
  t.ok(maxBufferedBytes <= SESSION_BUFFER_BYTES, `receiver held at most ${(maxBufferedBytes / MiB).toFixed(1)} MiB (cap 16 MiB)`)
  t.ok(maxWindowSumBytes <= SESSION_BUFFER_BYTES, `windows grew to ${(maxWindowSumBytes / MiB).toFixed(1)} MiB in all, within the session cap`)
  t.ok(maxRss - rssBefore < 150 * MiB, `rss grew by ${((maxRss - rssBefore) / MiB).toFixed(0)} MiB`)
  t.comment(`200 MiB in ${ms} ms; max receiver buffer ${(maxBufferedBytes / MiB).toFixed(1)} MiB`)
  await waitFor(() => client.streamCount === 0 && server.streamCount === 0, 5_000, 'all released')
  t.equal(server.streamCount, 0)
})

t.test('window growth: a fast reader earns a bigger window, a paused one keeps 256 KiB', async (t) => {
  const { client, server } = sessionPair(t, memoryPair())
  const inbound: MuxStream[] = []
  server.on('stream', (s) => inbound.push(s))
  const fast = client.open()
  const paused = client.open()
  const block = Buffer.alloc(BLOCK_BYTES, 1)
  await waitFor(() => inbound.length === 2)
  const [fastIn, pausedIn] = inbound as [MuxStream, MuxStream]
  let received = 0
  fastIn.on('data', (c: Buffer) => (received += c.length))
  for (let i = 0; i < 256; i++) if (!fast.write(block)) await once(fast, 'drain') // 16 MiB
  for (let i = 0; i < 16; i++) paused.write(block) // 1 MiB offered, nobody reads
  await waitFor(() => received === 256 * BLOCK_BYTES, 10_000, 'fast stream delivered')
  t.ok(fastIn.recv.windowBytes >= 1 * MiB, `fast reader's window grew to ${fastIn.recv.windowBytes / KiB} KiB`)
  t.ok(fastIn.recv.windowBytes <= 16 * MiB)
  await waitFor(() => pausedIn.readableLength === 256 * KiB, 2_000, 'paused stream window filled')
  await new Promise((r) => setTimeout(r, 50))
  t.equal(pausedIn.readableLength, 256 * KiB, 'and not a byte more')
  t.equal(pausedIn.recv.windowBytes, 256 * KiB, 'no growth without consumption')
})
