import t from 'tap'
import { hostMatchesPattern, isLoopbackHost, normalizeHostname, normalizeHostPattern } from '../../src/config/index.js'

t.test('normalizeHostname lowercases and strips one trailing dot', (t) => {
  const cases: Array<[string, string]> = [
    ['A.TEST.', 'a.test'],
    ['blog', 'blog'],
    ['xn--a-ecp.test', 'xn--a-ecp.test'],
    ['127.0.0.1', '127.0.0.1'],
    ['a-b.c0', 'a-b.c0'],
    [`${'a'.repeat(63)}.test`, `${'a'.repeat(63)}.test`],
  ]
  for (const [input, want] of cases) t.equal(normalizeHostname(input), want, input)
  t.end()
})

t.test('normalizeHostname rejects everything that is not an LDH name (SECURITY A15)', (t) => {
  const bad = [
    '', '.', 'a..b', '.a', 'a.test..', 'a.test:443', 'a.test\r\nX: y', ' a.test', 'a.test ', 'a b',
    '*.test', 'a_b.test', '-a.test', 'a-.test', `${'a'.repeat(64)}.test`,
    `${'a.'.repeat(127)}ab`, // 255 characters
    '\u212Aelvin.test', // KELVIN SIGN lowercases to ASCII "k"
    'bücher.de', '127.1', '2130706433', '0x7f000001', '0177.0.0.1.', 'a.0x10', '::1', '[::1]', 'a\u0000.test',
  ]
  for (const input of bad) t.equal(normalizeHostname(input), null, JSON.stringify(input))
  t.equal(normalizeHostname(`${'a.'.repeat(126)}a`), `${'a.'.repeat(126)}a`, '253 characters is fine')
  t.end()
})

t.test('patterns: exact names or "*." plus a name', (t) => {
  t.equal(normalizeHostPattern('*.Laptop.Example.com.'), '*.laptop.example.com')
  t.equal(normalizeHostPattern('blog.example.org'), 'blog.example.org')
  for (const bad of ['*', '*.', '**.a.com', '*a.com', 'a.*.com', '*.*.com', '*.127.0.0.1', '']) {
    t.equal(normalizeHostPattern(bad), null, JSON.stringify(bad))
  }
  t.end()
})

t.test('hostMatchesPattern: "*." matches exactly one label, case-insensitively', (t) => {
  const cases: Array<[string, string, boolean]> = [
    ['x.a.com', '*.a.com', true],
    ['X.A.COM.', '*.a.com', true],
    ['x.a.com', '*.A.COM', true],
    ['y.x.a.com', '*.a.com', false],
    ['a.com', '*.a.com', false],
    ['xa.com', '*.a.com', false],
    ['blog.example.org', 'blog.example.org', true],
    ['BLOG.example.org.', 'blog.example.org', true],
    ['x.blog.example.org', 'blog.example.org', false],
    ['a.test:443', 'a.test', false],
    ['a.test', '*', false],
    ['bad host.a.com', '*.a.com', false],
  ]
  for (const [host, pattern, want] of cases) t.equal(hostMatchesPattern(host, pattern), want, `${host} ~ ${pattern}`)
  t.end()
})

t.test('isLoopbackHost', (t) => {
  for (const h of ['127.0.0.1', '127.9.9.9', '::1', 'localhost', 'a.localhost', '::ffff:127.0.0.1']) t.equal(isLoopbackHost(h), true, h)
  for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '128.0.0.1']) t.equal(isLoopbackHost(h), false, h)
  t.end()
})
