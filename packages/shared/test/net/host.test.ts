import t from 'tap'
import { classifyHost, normalizeHostname } from '../../src/net/host.js'

t.test('classifyHost: names, canonical literals, and everything else invalid', (t) => {
  const describe = (text: string): string => {
    const h = classifyHost(text)
    if (h.kind === 'ip') return `ip ${h.address.toString()}`
    if (h.kind === 'name') return `name ${h.name}`
    return 'invalid'
  }
  const cases: Array<[string, string]> = [
    ['smtp.example.com', 'name smtp.example.com'],
    ['SMTP.Example.COM.', 'name smtp.example.com'],
    ['localhost.', 'name localhost'],
    ['xn--a-ecp.test', 'name xn--a-ecp.test'],
    ['203.0.113.5', 'ip 203.0.113.5'],
    ['::1', 'ip ::1'],
    ['[::1]', 'ip ::1'],
    ['[2001:db8::1]', 'ip 2001:db8::1'],
    // SECURITY D3: obfuscated IPv4 literals and odd IPv6 spellings
    ['2130706433', 'invalid'],
    ['0x7f000001', 'invalid'],
    ['0X7F000001', 'invalid'],
    ['0177.0.0.1', 'invalid'],
    ['127.1', 'invalid'],
    ['127.0.0.1.', 'invalid'],
    ['::ffff:127.0.0.1', 'invalid'],
    ['[::ffff:7f00:1]', 'invalid'],
    ['[fe80::1%lo]', 'invalid'],
    ['fe80::1%lo', 'invalid'],
    ['[127.0.0.1]', 'invalid'],
    ['', 'invalid'],
    ['a..b', 'invalid'],
    ['-a.test', 'invalid'],
    ['a b.test', 'invalid'],
    ['a.test\r\nx', 'invalid'],
    ['exämple.com', 'invalid'],
    [`${'a'.repeat(64)}.test`, 'invalid'],
    ['host.123', 'invalid'],
    // One normaliser for dial targets and outbound rules (issue 10): they used to disagree on these.
    ['_dmarc.example.com', 'invalid'],
    ['a_b.example.com', 'invalid'],
    ['\u212Aelvin.test', 'invalid'],
  ]
  for (const [input, expected] of cases) t.equal(describe(input), expected, JSON.stringify(input))
  t.end()
})

t.test('normalizeHostname length limit is 253 characters', (t) => {
  const label = 'a'.repeat(63)
  const long = [label, label, label, 'b'.repeat(61)].join('.')
  t.equal(long.length, 253)
  t.equal(normalizeHostname(long), long)
  t.equal(normalizeHostname(`${long}.`), long, 'a trailing dot does not count')
  t.equal(normalizeHostname(`c${long}`), null)
  t.end()
})
