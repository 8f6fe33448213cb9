import t from 'tap'
import { ORDER_WINDOW_MS, orderSlot, renewAt, RETRY_BASE_MS, RETRY_MAX_MS, retryDelayMs } from '../../src/acme/schedule.js'

const DAY = 86_400_000

t.test('renewal at two thirds of the lifetime, earlier by at most a twentieth (capped at a day)', (t) => {
  const cases: Array<[string, number, number, number | null, number, number]> = [
    ['90 days, no jitter', 0, 90 * DAY, null, 0, 60 * DAY],
    ['90 days, most jitter', 0, 90 * DAY, null, 0.999999, 60 * DAY - Math.round(0.999999 * DAY)],
    ['60 s, half jitter', 1000, 61_000, null, 0.5, 1000 + 40_000 - 1500],
    ['renew_before_expiry_s', 0, 90 * DAY, 30 * 86_400, 0, 60 * DAY],
    ['renew_before_expiry_s longer than the lifetime: at once', 5000, 65_000, 3600, 0, 5000],
  ]
  for (const [name, from, to, before, jitter, want] of cases) t.equal(renewAt(from, to, before, jitter), want, name)
  t.end()
})

t.test('retry delays double per failure up to the cap', (t) => {
  t.same([1, 2, 3, 4].map(retryDelayMs), [RETRY_BASE_MS, 2 * RETRY_BASE_MS, 4 * RETRY_BASE_MS, 8 * RETRY_BASE_MS])
  t.equal(retryDelayMs(50), RETRY_MAX_MS)
  t.end()
})

t.test('the hourly cap counts a rolling window', (t) => {
  const times = [0, 1000, 2000]
  t.same(orderSlot(times, 3000, 3), { ok: false, at: ORDER_WINDOW_MS })
  t.same(orderSlot(times, 3000, 4), { ok: true })
  t.same(orderSlot(times, ORDER_WINDOW_MS + 500, 3), { ok: true }, 'the oldest left the window')
  t.same(times, [1000, 2000])
  t.end()
})
