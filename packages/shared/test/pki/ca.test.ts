import { X509Certificate } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import forge from 'node-forge'
import t from 'tap'
import { initCa } from '../../src/pki/ca.js'
import { issueClientCert } from '../../src/pki/issue.js'

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1'

t.test('initCa writes the CA, the server certificate and empty lists with private modes', async (t) => {
  const dir = join(t.testdir(), 'pki')
  const result = await initCa({ dir, hostname: 'relay.test' })
  t.equal(result.caCertFile, join(dir, 'ca.crt'))
  for (const [file, mode] of [['ca.key', 0o600], ['server.key', 0o600], ['ca.crt', 0o644], ['server.crt', 0o644]] as const) {
    t.equal((await stat(join(dir, file))).mode & 0o777, mode, `${file} mode`)
  }
  t.equal((await stat(dir)).mode & 0o777, 0o700, 'pki dir mode')
  t.same(JSON.parse(await readFile(join(dir, 'issued.json'), 'utf8')), { version: 1, certs: [] })
  t.same(JSON.parse(await readFile(join(dir, 'revoked.json'), 'utf8')), { version: 1, crlNumber: 1, revoked: [] })
  t.match(await readFile(join(dir, 'ca.crl'), 'utf8'), /^-----BEGIN X509 CRL-----\n/)
})

t.test('CA: CA:true pathlen 0, keyCertSign + cRLSign only, self-issued', async (t) => {
  const dir = join(t.testdir(), 'pki')
  await initCa({ dir, hostname: 'relay.test', days: 30 })
  const pem = await readFile(join(dir, 'ca.crt'), 'utf8')
  const node = new X509Certificate(pem)
  t.equal(node.ca, true)
  t.equal(node.subject, 'CN=Porchlight CA relay.test\nO=Porchlight')
  t.equal(node.checkIssued(node), true)
  const days = (Date.parse(node.validTo) - Date.now()) / 86_400_000
  t.ok(days > 29.9 && days <= 30, `valid for 30 days (got ${days.toFixed(2)})`)
  const cert = forge.pki.certificateFromPem(pem)
  const bc = cert.getExtension('basicConstraints') as { cA: boolean; pathLenConstraint: number; critical: boolean }
  t.same([bc.cA, bc.pathLenConstraint, bc.critical], [true, 0, true])
  const ku = cert.getExtension('keyUsage') as Record<string, boolean>
  t.same([ku['keyCertSign'], ku['cRLSign'], ku['digitalSignature'], ku['keyEncipherment']], [true, true, false, false])
})

t.test('server certificate: SANs for the hostname, localhost and loopback IPs; serverAuth; signed by the CA', async (t) => {
  const dir = join(t.testdir(), 'pki')
  const result = await initCa({ dir, hostname: 'relay.test' })
  t.same(result.serverNames, { dns: ['relay.test', 'localhost'], ips: ['127.0.0.1', '::1'] })
  const ca = new X509Certificate(await readFile(join(dir, 'ca.crt')))
  const server = new X509Certificate(await readFile(join(dir, 'server.crt')))
  t.equal(server.subjectAltName, 'DNS:relay.test, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1')
  t.same(server.keyUsage, [SERVER_AUTH])
  t.equal(server.ca, false)
  t.equal(server.checkIssued(ca), true)
  t.equal(server.verify(ca.publicKey), true, 'OpenSSL accepts the signature made through crypto.sign')
  t.equal(server.checkPrivateKey((await import('node:crypto')).createPrivateKey(await readFile(join(dir, 'server.key')))), true)
})

t.test('an IP hostname goes into the IP SANs, and localhost is not repeated', async (t) => {
  const dir = join(t.testdir(), 'pki')
  const result = await initCa({ dir, hostname: '203.0.113.7' })
  t.same(result.serverNames, { dns: ['localhost'], ips: ['203.0.113.7', '127.0.0.1', '::1'] })
  const again = await initCa({ dir, hostname: 'localhost', force: true })
  t.same(again.serverNames, { dns: ['localhost'], ips: ['127.0.0.1', '::1'] })
})

t.test('refuses to replace an existing CA without force; force replaces it and resets the lists', async (t) => {
  const dir = join(t.testdir(), 'pki')
  await initCa({ dir })
  const before = await readFile(join(dir, 'ca.crt'), 'utf8')
  await issueClientCert({ dir, name: 'laptop' })
  await t.rejects(initCa({ dir }), { code: 'PL_ERR_PKI_EXISTS' })
  t.equal(await readFile(join(dir, 'ca.crt'), 'utf8'), before, 'untouched after the refusal')
  await initCa({ dir, force: true })
  t.not(await readFile(join(dir, 'ca.crt'), 'utf8'), before)
  t.same(JSON.parse(await readFile(join(dir, 'issued.json'), 'utf8')).certs, [])
})

t.test('bad input is a usage error', async (t) => {
  const dir = join(t.testdir(), 'pki')
  await t.rejects(initCa({ dir, hostname: 'a b' }), { code: 'PL_ERR_USAGE' })
  await t.rejects(initCa({ dir, days: 0 }), { code: 'PL_ERR_USAGE' })
  await t.rejects(initCa({ dir, days: 1.5 }), { code: 'PL_ERR_USAGE' })
})

t.test('key generation and signing keep the event loop responsive (SECURITY E10)', async (t) => {
  const dir = join(t.testdir(), 'pki')
  const histogram = monitorEventLoopDelay({ resolution: 5 })
  histogram.enable()
  const before = performance.eventLoopUtilization()
  const started = performance.now()
  await initCa({ dir })
  for (let i = 0; i < 5; i++) await issueClientCert({ dir, name: `agent-${i}` })
  const utilization = performance.eventLoopUtilization(before).utilization
  histogram.disable()
  t.comment(`ca init + 5 certs: ${(performance.now() - started).toFixed(0)} ms; event loop busy ${(utilization * 100).toFixed(0)}% of the time; ` +
    `delay p50 ${(histogram.percentile(50) / 1e6).toFixed(1)} ms, p99 ${(histogram.percentile(99) / 1e6).toFixed(1)} ms, max ${(histogram.max / 1e6).toFixed(1)} ms`)
  // Utilization, not delay percentiles: on a loaded 2-core machine delay spikes come from the
  // scheduler, whereas 7 RSA keygens on the main thread would keep the loop ~100% busy.
  t.ok(utilization < 0.5, `event loop busy ${(utilization * 100).toFixed(0)}% < 50% while 7 RSA-2048 keys are made`)
})
