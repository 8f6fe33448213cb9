import t from 'tap'
import { startWakeDetector } from '../src/wake-detector.js'

t.test('a late timer (clock jump) reports the gap; normal ticks do not', async (t) => {
  let fakeNow = 1_000_000
  const gaps: number[] = []
  const stop = startWakeDetector({ intervalMs: 20, gapMs: 5_000, now: () => fakeNow, onWake: (gap) => gaps.push(gap) })
  t.teardown(stop)
  for (let i = 0; i < 5; i++) {
    fakeNow += 20
    await new Promise((r) => setTimeout(r, 25))
  }
  t.same(gaps, [], 'regular ticks are not a wake-up')
  fakeNow += 90_000 // as if the laptop slept for 90 s
  await new Promise((r) => setTimeout(r, 40))
  t.equal(gaps.length, 1)
  t.ok(gaps[0]! >= 85_000 && gaps[0]! <= 90_000, `gap ${gaps[0]}`)
  stop()
  fakeNow += 90_000
  await new Promise((r) => setTimeout(r, 40))
  t.equal(gaps.length, 1, 'stopped detectors stay quiet')
})
