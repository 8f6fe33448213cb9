import t from 'tap'
import { BASIC_CHALLENGE, checkBasicCredentials, hashPassword, parseBasicAuth, PasswordCache, verifyPassword } from '../../src/access/basic.js'

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64')

t.test('parseBasicAuth: well-formed headers', (t) => {
  t.same(parseBasicAuth(`Basic ${b64('alice:s3cret')}`), { user: 'alice', password: 's3cret' })
  t.same(parseBasicAuth(`basic   ${b64('alice:pa:ss')}  `), { user: 'alice', password: 'pa:ss' }, 'scheme case-insensitive; first colon splits')
  t.same(parseBasicAuth(`Basic ${b64('jürgen:pässword')}`), { user: 'jürgen', password: 'pässword' }, 'UTF-8')
  t.same(parseBasicAuth(`Basic ${b64(':')}`), { user: '', password: '' })
  t.end()
})

t.test('parseBasicAuth: malformed input is null, never a throw (SECURITY C6)', (t) => {
  const cases: Array<[string, string | string[] | undefined]> = [
    ['missing', undefined], ['empty', ''], ['scheme only', 'Basic'], ['scheme and space', 'Basic '],
    ['other scheme', `Bearer ${b64('a:b')}`], ['not base64', 'Basic !!!!'], ['bad padding', 'Basic YWJj='],
    ['no colon', `Basic ${b64('alice')}`], ['10 KB', `Basic ${'A'.repeat(10_000)}`],
    ['two headers', [`Basic ${b64('a:b')}`, `Basic ${b64('c:d')}`]], ['control char', `Basic ${b64('a\nb:c')}`],
    ['invalid utf-8', `Basic ${Buffer.from([0x61, 0x3a, 0xff, 0xfe]).toString('base64')}`], ['two tokens', `Basic ${b64('a:b')} ${b64('c:d')}`],
  ]
  for (const [name, header] of cases) t.equal(parseBasicAuth(header), null, name)
  t.end()
})

t.test('checkBasicCredentials: right pair only; wrong user and wrong password both run scrypt', async (t) => {
  const expected = { user: 'alice', password_hash: await hashPassword('s3cret') }
  const cache = new PasswordCache()
  t.equal(await checkBasicCredentials({ user: 'alice', password: 's3cret' }, expected, cache), true)
  t.equal(await checkBasicCredentials({ user: 'alicf', password: 's3cret' }, expected, cache), false)
  t.equal(await checkBasicCredentials({ user: 'alice', password: 's3creu' }, expected, cache), false)
  t.equal(await checkBasicCredentials({ user: '', password: '' }, expected, cache), false)

  // Timing: wrong user vs wrong password (uncached paths) cost the same scrypt (SECURITY C5).
  // Interleaved and compared by median so load on a shared machine hits both sides alike.
  const samples: Record<'user' | 'password', number[]> = { user: [], password: [] }
  for (let i = 0; i < 6; i++) {
    for (const [kind, creds] of [['user', { user: 'mallory', password: 's3cret' }], ['password', { user: 'alice', password: 'guess' }]] as const) {
      const started = performance.now()
      await checkBasicCredentials(creds, expected, new PasswordCache())
      samples[kind].push(performance.now() - started)
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0
  const wrongUserMs = median(samples.user)
  const wrongPasswordMs = median(samples.password)
  t.comment(`median per check: wrong user ${wrongUserMs.toFixed(1)} ms, wrong password ${wrongPasswordMs.toFixed(1)} ms`)
  t.ok(wrongUserMs > 10 && wrongPasswordMs > 10, 'both paths run scrypt (> 10 ms)')
  t.ok(Math.abs(wrongUserMs - wrongPasswordMs) < Math.max(wrongUserMs, wrongPasswordMs) * 0.5, 'same order of time')
})

t.test('PasswordCache: successes are remembered for the TTL, failures never; size is bounded', async (t) => {
  const hash = await hashPassword('pw')
  let now = 1_000_000
  let scryptRuns = 0
  const counting = async (password: string, passwordHash: string) => {
    scryptRuns++
    return verifyPassword(password, passwordHash)
  }
  const cache = new PasswordCache({ maxEntries: 2, ttlMs: 1000, now: () => now, verify: counting })
  t.equal(await cache.verify({ user: 'u', password: 'pw' }, { user: 'u', password_hash: hash }), true)
  t.equal(await cache.verify({ user: 'u', password: 'pw' }, { user: 'u', password_hash: hash }), true)
  t.equal(scryptRuns, 1, 'second success came from the cache')
  t.equal(await cache.verify({ user: 'u', password: 'nope' }, { user: 'u', password_hash: hash }), false)
  t.equal(await cache.verify({ user: 'u', password: 'nope' }, { user: 'u', password_hash: hash }), false)
  t.equal(scryptRuns, 3, 'failures are checked every time')
  t.equal(cache.size, 1, 'failure not cached')
  now += 1001
  t.equal(await cache.verify({ user: 'u', password: 'pw' }, { user: 'u', password_hash: hash }), true)
  t.equal(scryptRuns, 4, 'expired entry means a fresh scrypt')
  await cache.verify({ user: 'u', password: 'a' }, { user: 'u', password_hash: await hashPassword('a') })
  await cache.verify({ user: 'u', password: 'b' }, { user: 'u', password_hash: await hashPassword('b') })
  t.equal(cache.size, 2, 'bounded by maxEntries')
  await cache.verify({ user: 'u', password: 'pw' }, { user: 'u', password_hash: hash })
  t.equal(scryptRuns, 7, 'the oldest entry was evicted')
})

t.test('PasswordCache: a right password under a wrong user is never cached, and costs a scrypt run each time (issue 16)', async (t) => {
  const hash = await hashPassword('pw')
  let scryptRuns = 0
  const counting = async (password: string, passwordHash: string) => {
    scryptRuns++
    return verifyPassword(password, passwordHash)
  }
  const cache = new PasswordCache({ verify: counting })
  const expected = { user: 'alice', password_hash: hash }
  t.equal(await cache.verify({ user: 'alice', password: 'pw' }, expected), true, 'the right pair succeeds')
  t.equal(scryptRuns, 1)
  t.equal(await cache.verify({ user: 'mallory', password: 'pw' }, expected), false, 'wrong user, right password')
  t.equal(await cache.verify({ user: 'mallory', password: 'pw' }, expected), false)
  t.equal(scryptRuns, 3, 'the success of alice/pw is not a cache hit for mallory/pw')
  t.equal(cache.size, 1, 'only the full success is cached')
  const fresh = new PasswordCache({ verify: counting })
  t.equal(await fresh.verify({ user: 'mallory', password: 'pw' }, expected), false)
  t.equal(await fresh.verify({ user: 'mallory', password: 'pw' }, expected), false)
  t.equal(fresh.size, 0, 'a wrong user with the right password is not cached as a success')
  t.equal(scryptRuns, 5)
})

t.test('the challenge names the realm', (t) => {
  t.equal(BASIC_CHALLENGE, 'Basic realm="porchlight"')
  t.end()
})

t.test('PasswordCache bounds concurrent scrypt runs and refuses beyond its queue', async (t) => {
  const hash = await hashPassword('pw')
  const cache = new PasswordCache({ maxConcurrent: 1, maxQueued: 2 })
  const results = await Promise.allSettled([1, 2, 3, 4, 5].map((i) => cache.verify({ user: 'u', password: `wrong-${i}` }, { user: 'u', password_hash: hash })))
  t.same(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected'])
  t.match((results[3] as PromiseRejectedResult).reason, { code: 'PL_ERR_ACCESS_RATE_LIMITED' })
  t.equal(await cache.verify({ user: 'u', password: 'pw' }, { user: 'u', password_hash: hash }), true, 'works again once the queue drained')
})
