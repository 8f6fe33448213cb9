import t from 'tap'
import { RateLimiter } from '../../src/access/rate-limit.js'

t.test('hit allows `limit` events per window, then refuses with Retry-After until the window ends', (t) => {
  let now = 0
  const limiter = new RateLimiter({ limit: 3, windowMs: 60_000, maxKeys: 10, now: () => now })
  t.same([1, 2, 3].map(() => limiter.hit('a').allowed), [true, true, true])
  t.same(limiter.hit('a'), { allowed: false, retryAfterS: 60 })
  now = 30_500
  t.same(limiter.hit('a'), { allowed: false, retryAfterS: 30 })
  t.same(limiter.peek('a'), { allowed: false, retryAfterS: 30 })
  t.same(limiter.hit('b'), { allowed: true, retryAfterS: 0 }, 'other keys are unaffected')
  now = 60_000
  t.same(limiter.hit('a'), { allowed: true, retryAfterS: 0 }, 'new window')
  t.end()
})

t.test('peek does not count; a key at the limit is refused by peek', (t) => {
  const limiter = new RateLimiter({ limit: 2, windowMs: 1000, maxKeys: 10, now: () => 0 })
  for (let i = 0; i < 10; i++) limiter.peek('k')
  t.same(limiter.peek('k'), { allowed: true, retryAfterS: 0 })
  limiter.hit('k')
  t.equal(limiter.peek('k').allowed, true)
  limiter.hit('k')
  t.same(limiter.peek('k'), { allowed: false, retryAfterS: 1 })
  limiter.reset('k')
  t.same(limiter.peek('k'), { allowed: true, retryAfterS: 0 })
  t.end()
})

t.test('the table never exceeds maxKeys, evicting the least recently used (SECURITY C5: 1M spoofed keys)', (t) => {
  const limiter = new RateLimiter({ limit: 1, windowMs: 60_000, maxKeys: 1000, now: () => 0 })
  limiter.hit('victim')
  limiter.hit('victim')
  let maxSeen = 0
  for (let i = 0; i < 1_000_000; i++) {
    limiter.hit(`spoofed-${i}`)
    if ((i & 0xffff) === 0) maxSeen = Math.max(maxSeen, limiter.size)
  }
  t.equal(limiter.size, 1000)
  t.ok(maxSeen <= 1000)
  t.equal(limiter.peek('victim').allowed, true, 'evicted (LRU) rather than the table growing')
  const recent = new RateLimiter({ limit: 1, windowMs: 60_000, maxKeys: 2, now: () => 0 })
  recent.hit('a')
  recent.hit('b')
  recent.hit('a') // a is now most recent
  recent.hit('c') // evicts b
  t.same([recent.peek('a').allowed, recent.peek('b').allowed, recent.peek('c').allowed], [false, true, false])
  t.end()
})

t.test('nonsense options are refused', (t) => {
  t.throws(() => new RateLimiter({ limit: 0, windowMs: 1, maxKeys: 1 }), RangeError)
  t.throws(() => new RateLimiter({ limit: 1, windowMs: 0, maxKeys: 1 }), RangeError)
  t.throws(() => new RateLimiter({ limit: 1, windowMs: 1, maxKeys: 0 }), RangeError)
  t.end()
})
