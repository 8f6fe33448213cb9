import t from 'tap'
import { formatPortRange, normalizeCidr, normalizeHttpTarget, normalizeOutboundEntry, parsePortRange } from '../../src/config/index.js'

t.test('tcp_ports entries', (t) => {
  t.same(parsePortRange(2222), { from: 2222, to: 2222 })
  t.same(parsePortRange('2222'), { from: 2222, to: 2222 })
  t.same(parsePortRange('30000-30100'), { from: 30000, to: 30100 })
  t.same(parsePortRange('1-65535'), { from: 1, to: 65535 })
  const bad: Array<[unknown, RegExp]> = [
    ['30100-30000', /backwards \(write "30000-30100"\)/],
    ['0-10', /out of range 1-65535/],
    [0, /out of range 1-65535/],
    [70000, /out of range/],
    ['1 - 5', /invalid port/],
    ['1-', /invalid port/],
    ['a-b', /invalid port/],
    [true, /expected a port or "from-to", got true/],
    [[1, 2], /got a list/],
  ]
  for (const [value, re] of bad) t.throws(() => parsePortRange(value), re, JSON.stringify(value))
  t.equal(formatPortRange({ from: 5, to: 5 }), '5')
  t.equal(formatPortRange({ from: 5, to: 9 }), '5-9')
  t.end()
})

t.test('CIDRs and single addresses', (t) => {
  const good: Array<[string, string]> = [
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['203.0.113.7', '203.0.113.7/32'],
    ['2001:DB8::/32', '2001:db8::/32'],
    ['::1', '::1/128'],
    ['0.0.0.0/0', '0.0.0.0/0'],
  ]
  for (const [input, want] of good) t.equal(normalizeCidr(input), want, input)
  for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/8/8', '127.1', '0x7f.0.0.1/8', 'example.com', '10.0.0.0/+8', '']) {
    t.throws(() => normalizeCidr(bad), /not an IP address or CIDR|prefix length/, JSON.stringify(bad))
  }
  t.throws(() => normalizeCidr(8), /expected an IP address or CIDR, got 8/)
  t.end()
})

t.test('outbound entries are validated and normalised, never guessed', (t) => {
  const good: Array<[string, string]> = [
    ['smtp.example.com:587', 'smtp.example.com:587'],
    ['SMTP.Example.com.:587', 'smtp.example.com:587'],
    ['*.example.com:587', '*.example.com:587'],
    ['203.0.113.5:25', '203.0.113.5:25'],
    ['10.0.0.0/8:25', '10.0.0.0/8:25'],
    ['[::1]:25', '[::1]:25'],
    ['[2001:DB8::/32]:443', '[2001:db8::/32]:443'],
  ]
  for (const [input, want] of good) t.equal(normalizeOutboundEntry(input), want, input)
  const bad: Array<[unknown, RegExp]> = [
    ['smtp.x:abc', /invalid port "abc"/],
    ['smtp.example.com', /missing port/],
    ['smtp.example.com:0', /out of range 1-65535/],
    ['::1:25', /IPv6 addresses need brackets/],
    ['[127.0.0.1]:25', /brackets are only for IPv6/],
    ['127.1:25', /invalid destination host "127.1"/],
    ['2130706433:25', /invalid destination host/],
    ['0x7f000001:25', /invalid destination host/],
    ['*.*.com:25', /invalid wildcard/],
    ['*:25', /invalid destination host/],
    ['10.0.0.0/33:25', /prefix length/],
    [587, /expected "host:port", got 587/],
  ]
  for (const [value, re] of bad) t.throws(() => normalizeOutboundEntry(value), re, JSON.stringify(value))
  t.end()
})

t.test('http tunnel targets normalise to scheme://host:port', (t) => {
  const good: Array<[unknown, string]> = [
    [3000, 'http://127.0.0.1:3000'],
    ['3000', 'http://127.0.0.1:3000'],
    ['127.0.0.1:3000', 'http://127.0.0.1:3000'],
    ['localhost:8080', 'http://localhost:8080'],
    ['[::1]:3000', 'http://[::1]:3000'],
    ['http://127.0.0.1:3000', 'http://127.0.0.1:3000'],
    ['http://127.0.0.1:3000/', 'http://127.0.0.1:3000'],
    ['http://127.0.0.1', 'http://127.0.0.1:80'],
    ['https://Site.Local', 'https://site.local:443'],
  ]
  for (const [input, want] of good) t.equal(normalizeHttpTarget(input), want, String(input))
  const bad: Array<[unknown, RegExp]> = [
    ['ftp://x:21', /http:\/\/ or https:\/\//],
    ['http://127.0.0.1:3000/app', /must not have a path/],
    ['http://u:p@127.0.0.1:3000', /credentials/],
    [':3000', /missing host/],
    ['http://', /not a URL/],
    [0, /out of range 1-65535/],
  ]
  for (const [value, re] of bad) t.throws(() => normalizeHttpTarget(value), re, String(value))
  t.end()
})
