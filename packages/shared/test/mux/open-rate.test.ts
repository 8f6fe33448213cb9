import t from 'tap'
import { OpenRateLimit } from '../../src/mux/open-rate.js'

t.test('fixed one-second windows: perSecond allowed, the rest refused and counted', async (t) => {
  const limit = new OpenRateLimit(3)
  const at0 = [0, 1, 2, 3, 4].map((i) => limit.allow(100 + i))
  t.same(at0, [true, true, true, false, false])
  t.equal(limit.refused, 2)
  t.equal(limit.refusedInWindow, 2)
  t.equal(limit.allow(1_099), false, 'still the same window 999 ms later')
  t.equal(limit.allow(1_100), true, 'a new window at +1000 ms')
  t.equal(limit.refusedInWindow, 0)
  t.equal(limit.refused, 3, 'the total keeps counting')
})

t.test('0 means unlimited', async (t) => {
  const limit = new OpenRateLimit(0)
  for (let i = 0; i < 10_000; i++) if (!limit.allow(5)) t.fail('refused')
  t.equal(limit.refused, 0)
})
