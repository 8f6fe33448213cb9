// Property tests (fast-check) for the mux frame decoder and session (SECURITY.md A12): arbitrary
// bytes and mutated valid frame sequences never throw out of the public API, garbage closes the
// session with a protocol error (and a GoAway carrying the protocol-error code), and no stream is
// left in the session map. Fixed seed in CI (FUZZ_SEED overrides it, FUZZ_RUNS scales the runs).
import t from 'tap'
import fc from 'fast-check'
import { Duplex } from 'node:stream'
import { PorchlightError } from '../../src/errors.js'
import { encodeHeader, FrameDecoder } from '../../src/mux/codec.js'
import { Flag, FrameType, GoAwayCode, type FrameHeader } from '../../src/mux/frames.js'
import { MuxSession, type MuxStream } from '../../src/mux/index.js'
import { memoryPair } from './helpers.js'

const SEED = Number(process.env['FUZZ_SEED'] ?? 0x14f022)
const SCALE = Number(process.env['FUZZ_RUNS_SCALE'] ?? 1)
const runs = (n: number): number => Math.max(1, Math.round(n * SCALE))
t.comment(`fast-check seed ${SEED} (FUZZ_SEED=${SEED} replays it; FUZZ_RUNS_SCALE=${SCALE})`)

/** Runs a property with the fixed seed; a counterexample becomes one failing assertion with its replay path. */
async function check(t: { pass(msg: string): void; fail(msg: string): void }, name: string, numRuns: number, property: fc.IAsyncProperty<any> | fc.IProperty<any>): Promise<void> {
  const started = Date.now()
  const out = await fc.check(property as fc.IAsyncProperty<unknown>, { seed: SEED, numRuns, endOnFailure: true })
  if (out.failed) t.fail(fc.defaultReportMessage(out) ?? `${name} failed`)
  else t.pass(`${name}: ${out.numRuns} cases in ${Date.now() - started} ms`)
}

// ---------------------------------------------------------------- arbitraries

interface FrameSpec { type: number; flags: number; streamId: number; length: number }

/** Stream ids: mostly a few of the peer's (odd, the session is the server), sometimes ours, 0 or anything. */
const streamIdArb = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 5 }).map((i) => 2 * i + 1) },
  { weight: 1, arbitrary: fc.constantFrom(0, 2, 4) },
  { weight: 1, arbitrary: fc.nat({ max: 0xffff_ffff }) },
)

const frameArb: fc.Arbitrary<FrameSpec> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ type: fc.constant(FrameType.Data), flags: fc.integer({ min: 0, max: 15 }), streamId: streamIdArb, length: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 1500 })) }) },
  { weight: 4, arbitrary: fc.record({ type: fc.constant(FrameType.WindowUpdate), flags: fc.integer({ min: 0, max: 15 }), streamId: streamIdArb, length: fc.oneof(fc.integer({ min: 0, max: 65536 }), fc.nat({ max: 0xffff_ffff })) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant(FrameType.Ping), flags: fc.constantFrom(0, Flag.SYN, Flag.ACK), streamId: fc.constantFrom(0, 1), length: fc.nat({ max: 0xffff_ffff }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant(FrameType.GoAway), flags: fc.constant(0), streamId: fc.constant(0), length: fc.nat({ max: 5 }) }) },
)

function encodeFrames(frames: FrameSpec[]): Buffer {
  return Buffer.concat(frames.map((f) => f.type === FrameType.Data && f.length > 0
    ? Buffer.concat([encodeHeader(f.type as 0, f.flags, f.streamId, f.length), Buffer.alloc(f.length, f.streamId & 0xff)])
    : encodeHeader(f.type as 0, f.flags, f.streamId, f.length)))
}

type Mutation = { kind: 'flip'; at: number; bit: number } | { kind: 'set'; at: number; byte: number } | { kind: 'cut'; at: number } | { kind: 'drop'; at: number; n: number } | { kind: 'insert'; at: number; bytes: Uint8Array }

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('drop' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
)

function mutate(input: Buffer, mutations: Mutation[]): Buffer {
  let buf = Buffer.from(input)
  for (const m of mutations) {
    if (buf.length === 0) break
    const at = m.at % buf.length
    if (m.kind === 'flip') buf[at] = buf[at]! ^ (1 << m.bit)
    else if (m.kind === 'set') buf[at] = m.byte
    else if (m.kind === 'cut') buf = buf.subarray(0, at)
    else if (m.kind === 'drop') buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at + m.n)])
    else buf = Buffer.concat([buf.subarray(0, at), Buffer.from(m.bytes), buf.subarray(at)])
  }
  return buf
}

/** Cuts `bytes` into pieces whose sizes cycle through `cuts` (exercises every split point). */
function chunk(bytes: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = []
  for (let o = 0, i = 0; o < bytes.length; i++) {
    const n = cuts.length === 0 ? bytes.length : cuts[i % cuts.length]!
    out.push(bytes.subarray(o, o + n))
    o += n
  }
  return out
}

const cutsArb = fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 6 })

function isProtoError(err: unknown): boolean {
  return err instanceof PorchlightError && /^PL_ERR_PROTO_(BAD_FRAME|FRAME_TOO_LARGE)$/.test(err.code)
}

// ---------------------------------------------------------------- the decoder alone

t.test('FrameDecoder: arbitrary bytes in arbitrary chunks throw only PL_ERR_PROTO_*, then nothing more is delivered', async (t) => {
  await check(t, 'decoder garbage', runs(25_000), fc.property(fc.uint8Array({ maxLength: 200 }), cutsArb, fc.integer({ min: 0, max: 2048 }), (bytes, cuts, maxFrameBytes) => {
    let calls = 0
    let afterStop = 0
    const decoder = new FrameDecoder({
      maxFrameBytes,
      sink: { onHeader: () => { calls++; if (decoder.stopped) afterStop++ }, onPayload: () => { calls++ }, onDataEnd: () => { calls++ } },
    })
    let threw = 0
    for (const piece of chunk(Buffer.from(bytes), cuts)) {
      const before = calls
      try {
        decoder.push(piece)
      } catch (err) {
        if (!isProtoError(err)) throw err
        if (!decoder.stopped) throw new Error('threw without stopping')
        threw++
        continue
      }
      if (threw > 0 && calls !== before) throw new Error('a stopped decoder delivered more frames')
    }
    return threw <= 1 && afterStop === 0
  }))
})

t.test('FrameDecoder: decode(encode(frames)) = frames, whatever the chunking', async (t) => {
  await check(t, 'decoder round trip', runs(15_000), fc.property(fc.array(frameArb, { maxLength: 12 }), cutsArb, (frames, cuts) => {
    const seen: Array<FrameSpec & { payload: number }> = []
    const decoder = new FrameDecoder({
      maxFrameBytes: 4096,
      sink: {
        onHeader: (h: FrameHeader) => seen.push({ type: h.type, flags: h.flags, streamId: h.streamId, length: h.length, payload: 0 }),
        onPayload: (_h, piece) => { seen[seen.length - 1]!.payload += piece.length },
        onDataEnd: () => undefined,
      },
    })
    for (const piece of chunk(encodeFrames(frames), cuts)) decoder.push(piece)
    if (!decoder.idle || seen.length !== frames.length) return false
    return frames.every((f, i) => {
      const s = seen[i]!
      return s.type === f.type && s.flags === f.flags && s.streamId === f.streamId && s.length === f.length && s.payload === (f.type === FrameType.Data ? f.length : 0)
    })
  }))
})

// ---------------------------------------------------------------- a whole session

type Behaviour = 'resume' | 'echo' | 'destroy' | 'end' | 'paused'
const behaviourArb = fc.constantFrom<Behaviour>('resume', 'echo', 'destroy', 'end', 'paused')

interface Outcome { threw: unknown; closes: number; closeErr: PorchlightError | undefined; goAwayCodes: number[]; sweptCount: number | null; finalCount: number; stillOpenAfterSweep: boolean }

/**
 * Feeds `pieces` to a server session from a hand-driven peer, then (when the session survived and
 * sits on a frame boundary) resets every stream it still holds from the peer side: the map must be
 * empty again with the session still open. Finally closes it.
 */
async function drive(pieces: Buffer[], opts: { maxStreams: number; acceptBacklog: number; maxFrameBytes: number; listen: boolean; behaviours: Behaviour[] }): Promise<Outcome> {
  const [a, raw] = memoryPair() as [Duplex, Duplex]
  const session = new MuxSession(a, { role: 'server', keepAliveIntervalMs: 0, maxStreams: opts.maxStreams, acceptBacklog: opts.acceptBacklog, maxFrameBytes: opts.maxFrameBytes })
  const goAwayCodes: number[] = []
  const back = new FrameDecoder({ maxFrameBytes: 64 * 1024 * 1024, sink: { onHeader: (h) => { if (h.type === FrameType.GoAway) goAwayCodes.push(h.length) }, onPayload: () => undefined, onDataEnd: () => undefined } })
  raw.on('data', (c: Buffer) => back.push(c))
  raw.on('error', () => undefined)
  let closes = 0
  let closeErr: PorchlightError | undefined
  session.on('close', (err) => { closes++; closeErr = err as PorchlightError | undefined })
  let n = 0
  if (opts.listen) {
    session.on('stream', (s: MuxStream) => {
      s.on('error', () => undefined)
      const b = opts.behaviours.length === 0 ? 'resume' : opts.behaviours[n++ % opts.behaviours.length]!
      if (b === 'resume') s.resume()
      else if (b === 'echo') s.pipe(s)
      else if (b === 'destroy') s.destroy()
      else if (b === 'end') { s.resume(); s.end('bye') }
    })
  }
  let threw: unknown
  try {
    for (const p of pieces) raw.write(p)
  } catch (err) {
    threw = err
  }
  await new Promise((r) => setImmediate(r))
  const internals = session as unknown as { streams: Map<number, MuxStream>; decoder: FrameDecoder }
  let sweptCount: number | null = null
  let stillOpenAfterSweep = true
  if (!session.closed && internals.decoder.idle) {
    for (const id of [...internals.streams.keys()]) raw.write(encodeHeader(FrameType.WindowUpdate, Flag.RST, id, 0))
    await new Promise((r) => setImmediate(r))
    sweptCount = session.streamCount
    stillOpenAfterSweep = !session.closed
  }
  for (const s of internals.streams.values()) s.on('error', () => undefined)
  session.close()
  await new Promise((r) => setImmediate(r))
  raw.destroy()
  return { threw, closes, closeErr, goAwayCodes, sweptCount, finalCount: session.streamCount, stillOpenAfterSweep }
}

const sessionOptsArb = fc.record({
  maxStreams: fc.integer({ min: 1, max: 8 }),
  acceptBacklog: fc.integer({ min: 0, max: 4 }),
  maxFrameBytes: fc.constantFrom(512, 1500, 1024 * 1024),
  listen: fc.boolean(),
  behaviours: fc.array(behaviourArb, { maxLength: 5 }),
})

/** The invariants every run must keep; returns a reason when one is broken. */
function violated(o: Outcome): string | null {
  if (o.threw !== undefined) return `threw out of the transport: ${String(o.threw)}`
  if (o.closes !== 1) return `close emitted ${o.closes} times`
  if (o.finalCount !== 0) return `${o.finalCount} streams left after close`
  if (o.sweptCount !== null && o.sweptCount !== 0) return `${o.sweptCount} streams left after every stream was reset`
  if (!o.stillOpenAfterSweep) return 'resetting streams closed the session'
  if (o.closeErr !== undefined) {
    if (!isProtoError(o.closeErr)) return `closed with ${o.closeErr.code ?? String(o.closeErr)}, not a protocol error`
    if (!o.goAwayCodes.includes(GoAwayCode.ProtocolError)) return `protocol error without GoAway(protocol error): sent ${JSON.stringify(o.goAwayCodes)}`
  }
  return null
}

t.test('MuxSession: mutated valid frame sequences never throw, and leave no stream behind', async (t) => {
  const tally = new Map<string, number>()
  await check(t, 'session mutated', runs(8_000), fc.asyncProperty(fc.array(frameArb, { minLength: 1, maxLength: 30 }), fc.array(mutationArb, { maxLength: 3 }), cutsArb, sessionOptsArb, async (frames, mutations, cuts, opts) => {
    const o = await drive(chunk(mutate(encodeFrames(frames), mutations), cuts), opts)
    const outcome = o.closeErr?.code ?? 'survived'
    tally.set(outcome, (tally.get(outcome) ?? 0) + 1)
    const why = violated(o)
    if (why !== null) throw new Error(why)
  }))
  t.comment(`outcomes: ${JSON.stringify(Object.fromEntries(tally))}`)
  t.ok((tally.get('survived') ?? 0) > 0 && (tally.get('PL_ERR_PROTO_BAD_FRAME') ?? 0) > 0, 'the runs reach both outcomes')
})

t.test('MuxSession: a bad header (version or type) closes the session with PL_ERR_PROTO_BAD_FRAME and GoAway(protocol error)', async (t) => {
  const badHeader = fc.tuple(fc.oneof(
    fc.record({ at: fc.constant(0), byte: fc.integer({ min: 1, max: 255 }) }), // version
    fc.record({ at: fc.constant(1), byte: fc.integer({ min: 4, max: 255 }) }), // type
  ), fc.uint8Array({ minLength: 12, maxLength: 64 })).map(([{ at, byte }, rest]) => {
    const buf = Buffer.from(rest)
    buf[at] = byte
    return buf
  })
  await check(t, 'session garbage', runs(8_000), fc.asyncProperty(fc.array(frameArb, { maxLength: 6 }), badHeader, cutsArb, sessionOptsArb, async (prefix, garbage, cuts, opts) => {
    // A valid prefix (which must itself not end the session) then the bad header on a frame boundary.
    const valid = encodeFrames(prefix)
    const o = await drive(chunk(Buffer.concat([valid, garbage]), cuts), opts)
    const why = violated(o)
    if (why !== null) throw new Error(why)
    // The prefix alone may already have been a protocol error; either way the session is closed by one.
    if (o.closeErr?.code !== 'PL_ERR_PROTO_BAD_FRAME' && o.closeErr?.code !== 'PL_ERR_PROTO_FRAME_TOO_LARGE') throw new Error(`garbage left the session ${o.closeErr?.code ?? 'open'}`)
  }))
})

t.test('MuxSession: arbitrary bytes never throw and leave no stream behind', async (t) => {
  await check(t, 'session random bytes', runs(6_000), fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), cutsArb, sessionOptsArb, async (bytes, cuts, opts) => {
    const o = await drive(chunk(Buffer.from(bytes), cuts), opts)
    const why = violated(o)
    if (why !== null) throw new Error(why)
  }))
})
