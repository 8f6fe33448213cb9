import t from 'tap'
import { encodeProxyV1, encodeProxyV2, parseProxyHeader, PROXY_V2_SIGNATURE } from '../../src/net/proxy-protocol.js'

t.test('v1 encodes the exact text line', (t) => {
  t.equal(encodeProxyV1({ address: '203.0.113.7', port: 51234 }, { address: '198.51.100.1', port: 2222 }).toString(),
    'PROXY TCP4 203.0.113.7 198.51.100.1 51234 2222\r\n')
  t.equal(encodeProxyV1({ address: '2001:db8::7', port: 1 }, { address: '::1', port: 22 }).toString(),
    'PROXY TCP6 2001:db8::7 ::1 1 22\r\n')
  t.equal(encodeProxyV1({ address: '::ffff:203.0.113.7', port: 5 }, { address: '::ffff:127.0.0.1', port: 6 }).toString(),
    'PROXY TCP4 203.0.113.7 127.0.0.1 5 6\r\n', 'IPv4-mapped folded to TCP4')
  t.equal(encodeProxyV1({ address: 'nonsense', port: 5 }, { address: '127.0.0.1', port: 6 }).toString(), 'PROXY UNKNOWN\r\n')
  t.end()
})

t.test('v2 encodes the exact bytes for TCP4', (t) => {
  const buf = encodeProxyV2({ address: '10.0.0.1', port: 0x1234 }, { address: '10.0.0.2', port: 22 })
  t.equal(buf.toString('hex'), `${PROXY_V2_SIGNATURE.toString('hex')}2111000c0a0000010a00000212340016`)
  t.end()
})

t.test('round trips through parseProxyHeader', (t) => {
  const cases: Array<{ src: { address: string; port: number }; dst: { address: string; port: number }; family: string; srcOut: string; dstOut: string }> = [
    { src: { address: '203.0.113.7', port: 51234 }, dst: { address: '198.51.100.1', port: 2222 }, family: 'TCP4', srcOut: '203.0.113.7', dstOut: '198.51.100.1' },
    { src: { address: '::ffff:192.0.2.9', port: 1 }, dst: { address: '127.0.0.1', port: 65535 }, family: 'TCP4', srcOut: '192.0.2.9', dstOut: '127.0.0.1' },
    { src: { address: '2001:db8::7', port: 40000 }, dst: { address: '2001:db8::1', port: 443 }, family: 'TCP6', srcOut: '2001:db8::7', dstOut: '2001:db8::1' },
    { src: { address: '2001:db8::7', port: 40000 }, dst: { address: '127.0.0.1', port: 22 }, family: 'TCP6', srcOut: '2001:db8::7', dstOut: '::ffff:7f00:1' },
  ]
  for (const c of cases) {
    for (const [version, encode] of [[1, encodeProxyV1], [2, encodeProxyV2]] as const) {
      const bytes = Buffer.concat([encode(c.src, c.dst), Buffer.from('SSH-2.0-x\r\n')])
      const parsed = parseProxyHeader(bytes)
      t.ok(parsed, `v${version} ${c.src.address} parsed`)
      if (!parsed) continue
      t.equal(parsed.version, version)
      t.equal(parsed.family, c.family)
      t.equal(parsed.command, 'PROXY')
      t.equal(parsed.src?.port, c.src.port)
      t.equal(parsed.dst?.port, c.dst.port)
      t.equal(parsed.src?.address, c.srcOut, `v${version} src address`)
      t.equal(parsed.dst?.address, c.dstOut, `v${version} dst address`)
      t.equal(bytes.subarray(parsed.length).toString(), 'SSH-2.0-x\r\n', 'payload starts right after the header')
    }
  }
  t.end()
})

t.test('unknown addresses and partial or foreign input', (t) => {
  const v2 = encodeProxyV2({ address: 'x', port: 1 }, { address: 'y', port: 2 })
  t.equal(v2.length, 16)
  t.same(parseProxyHeader(v2), { version: 2, command: 'PROXY', family: 'UNKNOWN', src: null, dst: null, length: 16 })
  t.same(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n')), { version: 1, command: 'PROXY', family: 'UNKNOWN', src: null, dst: null, length: 15 })
  const full = encodeProxyV2({ address: '10.0.0.1', port: 1 }, { address: '10.0.0.2', port: 2 })
  t.equal(parseProxyHeader(full.subarray(0, 20)), null, 'incomplete v2')
  t.equal(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4')), null, 'incomplete v1')
  t.equal(parseProxyHeader(Buffer.from('SSH-2.0-OpenSSH\r\n')), null, 'not a header')
  t.throws(() => parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n')), /bad port/)
  t.throws(() => parseProxyHeader(Buffer.from('PROXY TCP4 ::1 5.6.7.8 1 2\r\n')), /bad TCP4 address/)
  t.throws(() => parseProxyHeader(Buffer.from(`PROXY ${'x'.repeat(120)}`)), /longer than 107/)
  t.end()
})
