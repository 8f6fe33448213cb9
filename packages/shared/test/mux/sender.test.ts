import { Duplex } from 'node:stream'
import t, { type Test } from 'tap'
import { FrameDecoder } from '../../src/mux/codec.js'
import { Flag, FrameType, type FrameHeader } from '../../src/mux/frames.js'
import { MuxSession, type MuxStream } from '../../src/mux/index.js'

/** A transport that records each batch the session hands it (one _writev = one syscall / ws message). */
class RecordingTransport extends Duplex {
  readonly batches: Buffer[][] = []
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.batches.push([chunk])
    cb()
  }
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this.batches.push(chunks.map((c) => c.chunk))
    cb()
  }
}

/** "SYN 1", "DATA 1 (4)", "FIN 1": what one batch carries, in order. */
function describe(batch: Buffer[]): string[] {
  const out: string[] = []
  const decoder = new FrameDecoder({
    maxFrameBytes: 1 << 20,
    sink: {
      onHeader: (h: FrameHeader) => {
        if (h.type === FrameType.Data) out.push(`DATA ${h.streamId} (${h.length})`)
        else if (h.flags & Flag.SYN) out.push(`SYN ${h.streamId}`)
        else if (h.flags & Flag.FIN) out.push(`FIN ${h.streamId}`)
        else out.push(`type${h.type} ${h.streamId}`)
      },
      onPayload: () => undefined,
      onDataEnd: () => undefined,
    },
  })
  decoder.push(Buffer.concat(batch))
  return out
}

function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

function session(t: Test): { open: () => MuxStream; transport: RecordingTransport } {
  const transport = new RecordingTransport()
  const mux = new MuxSession(transport, { role: 'client', keepAliveIntervalMs: 0 })
  t.teardown(() => mux.close())
  const open = (): MuxStream => {
    const s = mux.open()
    s.on('error', () => undefined) // teardown closes the session under open streams
    return s
  }
  return { open, transport }
}

t.test('open + head + end of several streams in one turn leave as one batch, FIN right after each body', async (t) => {
  const { open, transport } = session(t)
  for (let i = 0; i < 3; i++) open().end(Buffer.from('head'))
  await turn()
  await turn()
  t.equal(transport.batches.length, 1)
  t.same(describe(transport.batches[0]!), [
    'SYN 1', 'SYN 3', 'SYN 5',
    'DATA 1 (4)', 'FIN 1', 'DATA 3 (4)', 'FIN 3', 'DATA 5 (4)', 'FIN 5',
  ])
})

t.test('quiet link: the first write of a turn goes out on the next tick, without waiting for the turn to end', async (t) => {
  const { open, transport } = session(t)
  open().write('x')
  await new Promise<void>((resolve) => process.nextTick(resolve))
  t.equal(transport.batches.length, 1)
  t.same(describe(transport.batches[0]!), ['SYN 1', 'DATA 1 (1)'])
})

t.test('busy turn: whatever is queued after the first flush of a turn shares one later write', async (t) => {
  const { open, transport } = session(t)
  const [a, b, c] = [open(), open(), open()]
  a.write('1')
  // Later in the same turn (after the first flush): like further I/O callbacks of a busy loop.
  process.nextTick(() => {
    b.write('22')
    process.nextTick(() => c.end('333'))
  })
  await turn()
  await turn()
  t.equal(transport.batches.length, 2)
  t.same(describe(transport.batches[0]!), ['SYN 1', 'SYN 3', 'SYN 5', 'DATA 1 (1)'])
  t.same(describe(transport.batches[1]!), ['DATA 3 (2)', 'DATA 5 (3)', 'FIN 5'])
})

t.test('the next turn starts quiet again: its first write is not held back', async (t) => {
  const { open, transport } = session(t)
  const a = open()
  a.write('x')
  await turn()
  await turn()
  a.write('y')
  await new Promise<void>((resolve) => process.nextTick(resolve))
  t.equal(transport.batches.length, 2)
  t.same(describe(transport.batches[1]!), ['DATA 1 (1)'])
})
