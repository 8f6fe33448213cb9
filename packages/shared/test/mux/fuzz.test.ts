import t from 'tap'
import { encodeHeader } from '../../src/mux/codec.js'
import { FrameType } from '../../src/mux/frames.js'
import { rawPeer } from './helpers.js'

/** Small deterministic PRNG (mulberry32) so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Random frames that are often plausible (SYN on fresh peer-parity ids, traffic on opened ones,
 * lengths within a window) so sessions live long enough to reach deep states, and now and then
 * not (a reused SYN, wrong parity, stream 0, huge deltas, every flag mix).
 */
function frameSource(rand: () => number): () => Buffer {
  let nextId = 1
  const opened: number[] = []
  return () => {
    const r = rand()
    const type = r < 0.5 ? FrameType.Data : r < 0.8 ? FrameType.WindowUpdate : r < 0.97 ? FrameType.Ping : FrameType.GoAway
    let flags = 0
    if (rand() < 0.1) flags |= 2 // ACK
    if (rand() < 0.08) flags |= 4 // FIN
    if (rand() < 0.04) flags |= 8 // RST
    let streamId: number
    if (opened.length === 0 || rand() < 0.15) {
      streamId = nextId
      nextId += 2
      opened.push(streamId)
      flags |= 1 // SYN
    } else {
      streamId = opened[Math.floor(rand() * opened.length)]!
      const odd = rand()
      if (odd < 0.0002) flags |= 1 // SYN on an open id
      else if (odd < 0.0004) streamId = 0
      else if (odd < 0.0006) streamId += 1 // our parity
    }
    if (type === FrameType.Data) {
      const length = rand() < 0.2 ? 0 : Math.floor(rand() * 3000)
      return Buffer.concat([encodeHeader(type, flags, streamId, length), Buffer.alloc(length, streamId)])
    }
    const length = rand() < 0.99 ? Math.floor(rand() * 65536) : Math.floor(rand() * 0xffff_ffff)
    return encodeHeader(type, flags, streamId, length)
  }
}

const SEEDS = 40
const FRAMES_PER_SEED = 2_500 // 100k frames in all

// SECURITY A12: property test over random frame sequences.
t.test(`random frame sequences (${SEEDS} seeds x ${FRAMES_PER_SEED} frames) never escape as exceptions`, async (t) => {
  const outcomes = new Map<string, number>()
  for (let seed = 1; seed <= SEEDS; seed++) {
    const rand = prng(seed)
    const peer = rawPeer(t)
    peer.session.on('stream', (s) => {
      s.on('error', () => {})
      const r = rand()
      if (r < 0.3) s.resume()
      else if (r < 0.5) s.pipe(s)
      else if (r < 0.6) s.destroy()
    })
    let closeErr: { code?: string } | undefined
    let closes = 0
    peer.session.on('close', (err) => {
      closes++
      closeErr = err as { code?: string }
    })
    // Mostly whole frames, sometimes raw garbage, cut at random points.
    const garbage = seed % 4 === 0 ? 0.001 : 0
    const next = frameSource(rand)
    const frames = Array.from({ length: FRAMES_PER_SEED }, () => (rand() < garbage ? Buffer.from([Math.floor(rand() * 256)]) : next()))
    const bytes = Buffer.concat(frames)
    for (let o = 0; o < bytes.length; ) {
      const n = 1 + Math.floor(rand() * 9000)
      peer.sendBytes(bytes.subarray(o, o + n))
      o += n
    }
    await new Promise((r) => setImmediate(r))
    peer.session.close()
    await new Promise((r) => setImmediate(r))
    const outcome = closeErr?.code ?? "still open"
    if (process.env.FUZZ_DEBUG) t.comment((closeErr as Error | undefined)?.message ?? "open")
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
    t.equal(closes, 1, `seed ${seed}: close emitted once`)
    t.equal(peer.session.streamCount, 0, `seed ${seed}: no stream left`)
    t.ok(outcome === 'still open' || /^PL_ERR_(PROTO|MUX)_/.test(outcome), `seed ${seed}: ${outcome}`)
  }
  t.comment(JSON.stringify(Object.fromEntries(outcomes)))
})
