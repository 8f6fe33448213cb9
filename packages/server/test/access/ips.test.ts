import t from 'tap'
import { clientAddress, ipAllowed, MAX_FORWARDED_HOPS, parseCidrList } from '../../src/access/ips.js'

t.test('ipAllowed: CIDRs, single addresses, IPv4-mapped IPv6 folded (SECURITY C7)', (t) => {
  const { cidrs } = parseCidrList(['10.0.0.0/8', '2001:db8::/32', '192.0.2.7', '::ffff:198.51.100.0/120'])
  const cases: Array<[string, boolean]> = [
    ['10.1.2.3', true], ['::ffff:10.1.2.3', true], ['11.0.0.1', false], ['192.0.2.7', true], ['192.0.2.8', false],
    ['2001:db8::1', true], ['2001:db9::1', false], ['198.51.100.9', true], ['::ffff:198.51.100.9', true],
    ['127.0.0.1', false], ['', false], ['not-an-ip', false], ['10.1.2.3%eth0', false],
  ]
  for (const [address, allowed] of cases) t.equal(ipAllowed(address, cidrs), allowed, address)
  t.end()
})

t.test('clientAddress ignores X-Forwarded-For unless the peer is a trusted proxy', (t) => {
  t.same(clientAddress('127.0.0.1', '10.1.2.3', []), { clientIp: '127.0.0.1', trustedChain: null })
  t.same(clientAddress('::ffff:127.0.0.1', '10.1.2.3', ['10.0.0.0/8']), { clientIp: '127.0.0.1', trustedChain: null }, 'peer not trusted, mapped peer folded')
  t.same(clientAddress('127.0.0.1', undefined, ['127.0.0.1']), { clientIp: '127.0.0.1', trustedChain: null })
  t.same(clientAddress('127.0.0.1', '  ', ['127.0.0.1']), { clientIp: '127.0.0.1', trustedChain: null })
  t.end()
})

t.test('behind trusted proxies XFF is read right to left up to the first untrusted hop', (t) => {
  const trust = ['127.0.0.1', '10.0.0.0/8']
  const cases: Array<[string | string[], string, string]> = [
    ['203.0.113.9', '203.0.113.9', 'one hop'],
    ['1.1.1.1, 203.0.113.9', '203.0.113.9', 'the spoofed left entry is not believed'],
    ['1.1.1.1, 203.0.113.9, 10.0.0.5', '203.0.113.9', 'trusted inner proxy skipped'],
    ['10.0.0.6, 10.0.0.5', '10.0.0.6', 'all trusted: the leftmost'],
    [['1.1.1.1', '203.0.113.9'], '203.0.113.9', 'repeated headers join in order'],
    ['garbage, 10.0.0.5', '10.0.0.5', 'a malformed entry stops at the hop that wrote it'],
    ['203.0.113.9:4711', '203.0.113.9', 'ipv4 with port'],
    ['[2001:db8::1]:443', '2001:db8::1', 'bracketed ipv6 with port'],
    ['::ffff:203.0.113.9', '203.0.113.9', 'mapped folded'],
  ]
  for (const [xff, expected, name] of cases) t.equal(clientAddress('127.0.0.1', xff, trust).clientIp, expected, name)
  t.equal(clientAddress('127.0.0.1', '1.1.1.1 ,  203.0.113.9', trust).trustedChain, '1.1.1.1, 203.0.113.9')
  t.end()
})

t.test('a huge XFF is read only for its rightmost hops', (t) => {
  const many = Array.from({ length: 5000 }, () => '10.0.0.1').join(',')
  const result = clientAddress('10.0.0.2', `203.0.113.1,${many}`, ['10.0.0.0/8'])
  t.equal(result.clientIp, '10.0.0.1', `stops after ${MAX_FORWARDED_HOPS} hops without reaching the far left`)
  t.end()
})
