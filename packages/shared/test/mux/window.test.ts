import t from 'tap'
import { growWithinMs, MIN_GROW_WITHIN_MS, nextWindowBytes, ReceiveWindow, type WindowGrowthInput } from '../../src/mux/window.js'

const KiB = 1024
const MiB = 1024 * KiB

t.test('nextWindowBytes: growth table', (t) => {
  const base: WindowGrowthInput = { windowBytes: 256 * KiB, maxWindowBytes: 16 * MiB, consumedBytes: 128 * KiB, elapsedMs: 5, growWithinMs: 20, sessionSpareBytes: 64 * MiB }
  const cases: Array<[string, Partial<WindowGrowthInput>, number]> = [
    ['half a window in 5 ms: full window in 10 ms < 20 ms, doubles', {}, 512 * KiB],
    ['half a window in exactly 10 ms: full in 20 ms, not faster, stays', { elapsedMs: 10 }, 256 * KiB],
    ['half a window in 9 ms: doubles', { elapsedMs: 9 }, 512 * KiB],
    ['slow reader (half a window in 100 ms) stays', { elapsedMs: 100 }, 256 * KiB],
    ['elapsed 0 with bytes consumed doubles', { elapsedMs: 0 }, 512 * KiB],
    ['nothing consumed never grows', { consumedBytes: 0, elapsedMs: 0 }, 256 * KiB],
    ['capped at maxWindowBytes', { windowBytes: 12 * MiB, consumedBytes: 6 * MiB }, 16 * MiB],
    ['already at max stays', { windowBytes: 16 * MiB, consumedBytes: 8 * MiB }, 16 * MiB],
    ['session budget limits growth', { sessionSpareBytes: 100 * KiB }, 356 * KiB],
    ['no session budget, no growth', { sessionSpareBytes: 0 }, 256 * KiB],
    ['negative spare (over budget) no growth', { sessionSpareBytes: -5 }, 256 * KiB],
    ['long RTT link: 150 ms per half window with 400 ms threshold doubles', { elapsedMs: 150, growWithinMs: 400 }, 512 * KiB],
  ]
  for (const [name, change, want] of cases) t.equal(nextWindowBytes({ ...base, ...change }), want, name)
  t.end()
})

t.test('growWithinMs is two RTTs with a floor', (t) => {
  t.equal(growWithinMs(0), MIN_GROW_WITHIN_MS)
  t.equal(growWithinMs(1), MIN_GROW_WITHIN_MS)
  t.equal(growWithinMs(80), 160)
  t.end()
})

t.test('ReceiveWindow: credit follows consumption', (t) => {
  const w = new ReceiveWindow(256 * KiB, 0)
  t.equal(w.takeOpeningDelta(), 0, 'spec window needs no opening delta')
  t.equal(w.receive(256 * KiB), true, 'a full window is allowed')
  t.equal(w.receive(1), false, 'one byte more is a violation')
  t.equal(w.bufferedBytes, 256 * KiB)
  t.equal(w.takeUpdate(1000, 20, 64 * MiB, 16 * MiB), 0, 'nothing consumed, no update')
  w.consume(100 * KiB)
  t.equal(w.takeUpdate(1000, 20, 64 * MiB, 16 * MiB), 0, 'less than half consumed, no update')
  w.consume(128 * KiB)
  t.equal(w.pendingCreditBytes, 128 * KiB)
  t.equal(w.takeUpdate(1000, 20, 64 * MiB, 16 * MiB), 128 * KiB, 'slow (1 s): returns exactly what was consumed')
  t.equal(w.windowBytes, 256 * KiB)
  t.equal(w.grantedBytes, 384 * KiB)
  t.equal(w.receive(128 * KiB), true)
  t.equal(w.receive(1), false)
  t.end()
})

t.test('ReceiveWindow: consumption is monotonic and never above what arrived', (t) => {
  const w = new ReceiveWindow(256 * KiB, 0)
  w.receive(1000)
  w.consume(800)
  w.consume(500) // bytes unshifted back into the buffer do not take credit back
  t.equal(w.consumedBytes, 800)
  w.consume(5000)
  t.equal(w.consumedBytes, 1000)
  t.equal(w.bufferedBytes, 0)
  t.end()
})

t.test('ReceiveWindow: fast reader grows the window and the delta includes the growth', (t) => {
  const w = new ReceiveWindow(256 * KiB, 0)
  w.receive(128 * KiB)
  w.consume(128 * KiB)
  // 128 KiB in 2 ms: a full window in 4 ms, well under 20 ms -> doubles to 512 KiB.
  t.equal(w.takeUpdate(2, 20, 64 * MiB, 16 * MiB), 384 * KiB)
  t.equal(w.windowBytes, 512 * KiB)
  t.equal(w.grantedBytes, 640 * KiB)
  t.equal(w.receive(512 * KiB), true, 'the peer may now have 512 KiB outstanding')
  t.equal(w.receive(1), false)
  t.end()
})

t.test('ReceiveWindow: opening delta announces a larger initial window; smaller is clamped', (t) => {
  const big = new ReceiveWindow(1 * MiB, 0)
  t.equal(big.takeOpeningDelta(), 768 * KiB)
  t.equal(big.grantedBytes, 1 * MiB)
  const small = new ReceiveWindow(16 * KiB, 0)
  t.equal(small.windowBytes, 256 * KiB)
  t.equal(small.takeOpeningDelta(), 0)
  t.end()
})
