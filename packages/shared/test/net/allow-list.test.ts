import t from 'tap'
import { ipAllowed, parseCidrList } from '../../src/net/allow-list.js'

t.test('parseCidrList reports bad entries instead of dropping them', (t) => {
  const { cidrs, invalid } = parseCidrList(['203.0.113.0/24', ' ::1 ', 'nope', '10.0.0.0/99', '127.1'])
  t.equal(cidrs.length, 2)
  t.same(invalid, ['nope', '10.0.0.0/99', '127.1'])
  t.end()
})

t.test('ipAllowed uses the L4 peer address with IPv4-mapped folding (SECURITY C7)', (t) => {
  const { cidrs } = parseCidrList(['127.0.0.0/8', '2001:db8::/32'])
  t.equal(ipAllowed('127.0.0.1', cidrs), true)
  t.equal(ipAllowed('::ffff:127.0.0.1', cidrs), true)
  t.equal(ipAllowed('2001:db8::5', cidrs), true)
  t.equal(ipAllowed('10.1.2.3', cidrs), false)
  t.equal(ipAllowed('::1', cidrs), false)
  t.equal(ipAllowed(undefined, cidrs), false)
  t.equal(ipAllowed('garbage', cidrs), false)
  t.equal(ipAllowed('127.0.0.1', []), false, 'empty list allows nobody; callers decide what unset means')
  t.end()
})
