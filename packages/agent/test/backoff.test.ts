import t from 'tap'
import { Backoff, backoffDelayMs, backoffMaxFromEnv, BACKOFF_MAX_MS } from '../src/backoff.js'

// SECURITY F4: the backoff reaches its cap and stays there (no give-up).
t.test('full-jitter capped exponential: table with an injected random()', async (t) => {
  // [attempt, random, options, expected ms]
  const table: Array<[number, number, { baseMs?: number; maxMs?: number; floorMs?: number }, number]> = [
    [1, 0, {}, 100], // floor: never a tight loop
    [1, 0.5, {}, 550], // ceiling 1 s
    [1, 0.999999, {}, 1000],
    [2, 1, {}, 2000],
    [3, 1, {}, 4000],
    [4, 0.5, {}, 4050], // ceiling 8 s
    [5, 1, {}, 16_000],
    [6, 1, {}, 30_000], // 32 s capped at 30 s
    [50, 1, {}, 30_000], // huge attempts stay capped (no Infinity)
    [50, 0, {}, 100],
    [3, 1, { maxMs: 2000 }, 2000], // PORCHLIGHT_BACKOFF_MAX_MS-style cap
    [1, 1, { maxMs: 500 }, 500], // base shrinks to the cap
    [1, 0, { maxMs: 50 }, 50], // floor never exceeds base
    [2, 0.25, { baseMs: 100, floorMs: 0 }, 50],
    [0, 1, {}, 1000], // attempt 0 behaves like 1
  ]
  for (const [attempt, r, options, want] of table) {
    t.equal(backoffDelayMs(attempt, { ...options, random: () => r }), want, `attempt ${attempt}, random ${r}, ${JSON.stringify(options)}`)
  }
})

t.test('Backoff counts attempts and resets', async (t) => {
  const b = new Backoff({ random: () => 1 })
  t.same([b.next(), b.next(), b.next()], [1000, 2000, 4000])
  t.equal(b.attempt, 3)
  b.reset()
  t.equal(b.attempt, 0)
  t.equal(b.next(), 1000)
})

t.test('PORCHLIGHT_BACKOFF_MAX_MS is honoured; junk is ignored', async (t) => {
  const table: Array<[string | undefined, number]> = [
    [undefined, BACKOFF_MAX_MS],
    ['2000', 2000],
    [' 500 ', 500],
    ['0', BACKOFF_MAX_MS],
    ['-5', BACKOFF_MAX_MS],
    ['abc', BACKOFF_MAX_MS],
    ['1e9', BACKOFF_MAX_MS],
  ]
  for (const [value, want] of table) {
    t.equal(backoffMaxFromEnv(value === undefined ? {} : { PORCHLIGHT_BACKOFF_MAX_MS: value }), want, String(value))
  }
})

// SECURITY F3: full-jitter first retries of many agents spread out.
t.test('first retries of many agents spread out (no thundering herd)', async (t) => {
  const delays = Array.from({ length: 200 }, () => backoffDelayMs(1))
  const buckets = new Set(delays.map((d) => Math.floor(d / 100)))
  t.ok(buckets.size >= 8, `spread over ${buckets.size} 100 ms buckets`)
  t.ok(delays.every((d) => d >= 100 && d <= 1000))
})
