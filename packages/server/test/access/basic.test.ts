import t from 'tap'
import { BASIC_CHALLENGE, checkBasicCredentials, hashPassword, parseBasicAuth, PasswordCache } from '../../src/access/basic.js'

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
  const time = async (user: string, password: string) => {
    const started = performance.now()
    for (let i = 0; i < 4; i++) await checkBasicCredentials({ user, password }, expected, new PasswordCache())
    return (performance.now() - started) / 4
  }
  const wrongUserMs = await time('mallory', 's3cret')
  const wrongPasswordMs = await time('alice', 'guess')
  t.comment(`wrong user ${wrongUserMs.toFixed(1)} ms, wrong password ${wrongPasswordMs.toFixed(1)} ms per check`)
  t.ok(wrongUserMs > 10 && wrongPasswordMs > 10, 'both paths run scrypt (> 10 ms)')
  t.ok(Math.abs(wrongUserMs - wrongPasswordMs) < Math.max(wrongUserMs, wrongPasswordMs) * 0.5, 'same order of time')
})

t.test('PasswordCache: successes are remembered for the TTL, failures never; size is bounded', async (t) => {
  const hash = await hashPassword('pw')
  let now = 1_000_000
  const cache = new PasswordCache({ maxEntries: 2, ttlMs: 1000, now: () => now })
  t.equal(await cache.verify('pw', hash), true)
  let started = performance.now()
  t.equal(await cache.verify('pw', hash), true)
  t.ok(performance.now() - started < 5, 'cached success is fast')
  t.equal(await cache.verify('nope', hash), false)
  t.equal(cache.size, 1, 'failure not cached')
  now += 1001
  started = performance.now()
  t.equal(await cache.verify('pw', hash), true)
  t.ok(performance.now() - started > 5, 'expired entry means a fresh scrypt')
  const other1 = await hashPassword('a')
  const other2 = await hashPassword('b')
  await cache.verify('a', other1)
  await cache.verify('b', other2)
  t.equal(cache.size, 2)
})

t.test('the challenge names the realm', (t) => {
  t.equal(BASIC_CHALLENGE, 'Basic realm="porchlight"')
  t.end()
})

t.test('PasswordCache bounds concurrent scrypt runs and refuses beyond its queue', async (t) => {
  const hash = await hashPassword('pw')
  const cache = new PasswordCache({ maxConcurrent: 1, maxQueued: 2 })
  const results = await Promise.allSettled([1, 2, 3, 4, 5].map((i) => cache.verify(`wrong-${i}`, hash)))
  t.same(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected'])
  t.match((results[3] as PromiseRejectedResult).reason, { code: 'PL_ERR_ACCESS_RATE_LIMITED' })
  t.equal(await cache.verify('pw', hash), true, 'works again once the queue drained')
})
