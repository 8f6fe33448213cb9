import t from 'tap'
import { cidrContains, ipRange, isLoopbackAddress, isSpecialAddress, normalizeIp, normalizePeerIp, parseCanonicalIp, parseCidr, parseIp } from '../../src/net/ip.js'

t.test('parseIp accepts canonical literals only and folds IPv4-mapped IPv6', (t) => {
  const cases: Array<[string, string | null]> = [
    ['127.0.0.1', '127.0.0.1'],
    ['203.0.113.5', '203.0.113.5'],
    ['::1', '::1'],
    ['2001:0db8:0000::1', '2001:db8::1'],
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['::ffff:7f00:1', '127.0.0.1'],
    // inet_aton shapes that getaddrinfo would accept: never literals for us
    ['2130706433', null],
    ['0x7f000001', null],
    ['0177.0.0.1', null],
    ['127.1', null],
    ['01.2.3.4', null],
    ['1.2.3.04', null],
    ['fe80::1%lo', null],
    ['256.1.1.1', null],
    ['example.com', null],
    ['', null],
  ]
  for (const [input, expected] of cases) t.equal(parseIp(input)?.toString() ?? null, expected, input)
  t.equal(normalizeIp('::ffff:10.1.2.3'), '10.1.2.3')
  t.equal(normalizeIp('localhost'), null)
  t.end()
})

t.test('parseCanonicalIp refuses mapped IPv6 spellings of IPv4', (t) => {
  t.equal(parseCanonicalIp('::ffff:127.0.0.1'), null)
  t.equal(parseCanonicalIp('[::1]'), null, 'brackets are the caller\'s business')
  t.equal(parseCanonicalIp('127.0.0.1')?.toString(), '127.0.0.1')
  t.equal(parseCanonicalIp('::1')?.toString(), '::1')
  t.end()
})

t.test('parseCidr: prefixes, single addresses, host bits cleared, junk refused', (t) => {
  const show = (text: string): string | null => {
    const c = parseCidr(text)
    return c === null ? null : `${c.network.toString()}/${c.prefixLength}`
  }
  t.equal(show('10.0.0.0/8'), '10.0.0.0/8')
  t.equal(show('10.1.2.3/8'), '10.0.0.0/8')
  t.equal(show('203.0.113.7'), '203.0.113.7/32')
  t.equal(show('2001:db8::/32'), '2001:db8::/32')
  t.equal(show('::1'), '::1/128')
  t.equal(show('::ffff:10.0.0.0/104'), '10.0.0.0/8')
  t.equal(show('0.0.0.0/0'), '0.0.0.0/0')
  for (const bad of ['10.0.0.0/33', '10.0.0.0/', '10.0.0.0/08', '10/8', '0x0a000000/8', '::/129', 'fe80::%lo/64', 'x', '10.0.0.0/-1']) {
    t.equal(show(bad), null, bad)
  }
  t.end()
})

t.test('cidrContains matches by parsed value and never across families', (t) => {
  const ten = parseCidr('10.0.0.0/8')!
  t.equal(cidrContains(ten, parseIp('10.255.0.1')!), true)
  t.equal(cidrContains(ten, parseIp('11.0.0.1')!), false)
  t.equal(cidrContains(ten, parseIp('::ffff:10.0.0.9')!), true, 'mapped address folded before matching')
  t.equal(cidrContains(parseCidr('::/0')!, parseIp('10.0.0.1')!), false)
  t.equal(cidrContains(parseCidr('2001:db8::/32')!, parseIp('2001:db8:ffff::1')!), true)
  t.end()
})

t.test('special ranges: everything but global unicast', (t) => {
  const cases: Array<[string, boolean, string]> = [
    ['8.8.8.8', false, 'unicast'],
    ['2606:4700::1', false, 'unicast'],
    ['127.0.0.1', true, 'loopback'],
    ['10.1.2.3', true, 'private'],
    ['192.168.1.1', true, 'private'],
    ['169.254.169.254', true, 'linkLocal'],
    ['100.64.0.1', true, 'carrierGradeNat'],
    ['0.0.0.0', true, 'unspecified'],
    ['255.255.255.255', true, 'broadcast'],
    ['224.0.0.1', true, 'multicast'],
    ['192.0.2.1', true, 'reserved'],
    ['::1', true, 'loopback'],
    ['::', true, 'unspecified'],
    ['fe80::1', true, 'linkLocal'],
    ['fd00::1', true, 'uniqueLocal'],
    ['64:ff9b::7f00:1', true, 'rfc6052'],
    ['2002:7f00:1::', true, '6to4'],
    ['::7f00:1', true, 'ipv4Compatible'],
    ['::ffff:127.0.0.1', true, 'loopback'],
  ]
  for (const [addr, special, range] of cases) {
    t.equal(isSpecialAddress(addr), special, `${addr} special`)
    t.equal(ipRange(parseIp(addr)!), range, `${addr} range`)
  }
  t.equal(isSpecialAddress('not-an-ip'), true, 'unparseable fails closed')
  t.end()
})

t.test('isLoopbackAddress', (t) => {
  t.equal(isLoopbackAddress('127.0.0.1'), true)
  t.equal(isLoopbackAddress('127.8.9.10'), true)
  t.equal(isLoopbackAddress('::1'), true)
  t.equal(isLoopbackAddress('localhost'), true)
  t.equal(isLoopbackAddress('0.0.0.0'), false)
  t.equal(isLoopbackAddress('192.168.1.2'), false)
  t.equal(isLoopbackAddress('::'), false)
  t.end()
})

t.test('normalizePeerIp gives what normalizeIp gives, also on repeats and past its memo size', async (t) => {
  const samples = ['127.0.0.1', '::ffff:127.0.0.2', '::1', '2001:DB8::1', 'localhost', '0177.0.0.1', '']
  for (let round = 0; round < 2; round++) {
    for (const s of samples) t.equal(normalizePeerIp(s), normalizeIp(s), `${s} (round ${round})`)
  }
  for (let i = 0; i < 5000; i++) normalizePeerIp(`10.0.${i >> 8}.${i & 255}`)
  t.equal(normalizePeerIp('::ffff:10.1.2.3'), '10.1.2.3', 'still right after the memo was cleared')
})
