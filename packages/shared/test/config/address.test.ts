import t from 'tap'
import { formatAddress, parseAddress, parseDialTarget, parseLocalAddress, parsePort } from '../../src/config/index.js'

t.test('parseAddress accepts listener forms', (t) => {
  const cases: Array<[string, { host: string; port: number }]> = [
    ['127.0.0.1:7070', { host: '127.0.0.1', port: 7070 }],
    ['[::1]:80', { host: '::1', port: 80 }],
    ['[2001:DB8::1]:443', { host: '2001:db8::1', port: 443 }],
    [':80', { host: '0.0.0.0', port: 80 }],
    ['0.0.0.0:0', { host: '0.0.0.0', port: 0 }],
    ['LocalHost:8080', { host: 'localhost', port: 8080 }],
    ['relay.example.com.:65535', { host: 'relay.example.com', port: 65535 }],
  ]
  for (const [text, want] of cases) t.same(parseAddress(text), want, text)
  t.end()
})

t.test('parseAddress rejects malformed input with a reason', (t) => {
  const cases: Array<[string, RegExp]> = [
    ['', /empty/],
    ['127.0.0.1', /missing port/],
    ['::1:80', /IPv6 addresses need brackets: "\[::1\]:80"/],
    ['[::1]', /missing port/],
    ['[::1', /missing "\]"/],
    ['[nope]:80', /not an IPv6 address/],
    ['127.0.0.1:65536', /out of range 0-65535/],
    ['127.0.0.1:-1', /invalid port/],
    ['127.0.0.1:0x50', /invalid port/],
    ['127.0.0.1:8o', /invalid port/],
    [' 127.0.0.1:80', /spaces/],
    ['a b:80', /spaces/],
    ['bad_host:80', /invalid host "bad_host"/],
    ['127.1:80', /invalid host "127.1"/],
    ['0x7f000001:80', /invalid host/],
  ]
  for (const [text, re] of cases) t.throws(() => parseAddress(text), re, JSON.stringify(text))
  t.end()
})

t.test('formatAddress brackets IPv6 and round-trips', (t) => {
  t.equal(formatAddress({ host: '::1', port: 80 }), '[::1]:80')
  t.equal(formatAddress({ host: '127.0.0.1', port: 7070 }), '127.0.0.1:7070')
  for (const text of ['127.0.0.1:1', '[fe80::1]:22', 'example.com:443', '0.0.0.0:0']) {
    t.equal(formatAddress(parseAddress(text)), text, text)
  }
  t.end()
})

t.test('parsePort takes plain decimal digits only', (t) => {
  t.equal(parsePort('22'), 22)
  t.equal(parsePort(65535), 65535)
  t.equal(parsePort('0', 0), 0)
  t.throws(() => parsePort('0'), /out of range 1-65535/)
  for (const bad of ['+5', '5.0', ' 5', '', '123456', 1.5, -1, null, true]) {
    t.throws(() => parsePort(bad), /invalid port|out of range/, JSON.stringify(bad))
  }
  t.end()
})

t.test('local addresses default to loopback; dial targets need a host or a bare port', (t) => {
  t.same(parseLocalAddress(2525), { host: '127.0.0.1', port: 2525 })
  t.same(parseLocalAddress('2525'), { host: '127.0.0.1', port: 2525 })
  t.same(parseLocalAddress(':2525'), { host: '0.0.0.0', port: 2525 })
  t.same(parseLocalAddress('[::1]:2525'), { host: '::1', port: 2525 })
  t.throws(() => parseLocalAddress(true), /expected a port or "host:port", got true/)
  t.same(parseDialTarget('22'), { host: '127.0.0.1', port: 22 })
  t.same(parseDialTarget('nas.lan:22'), { host: 'nas.lan', port: 22 })
  t.throws(() => parseDialTarget(':22'), /missing host in ":22"/)
  t.throws(() => parseDialTarget('127.0.0.1:0'), /out of range 1-65535/)
  t.end()
})
