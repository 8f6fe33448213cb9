import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import forge from 'node-forge'
import t from 'tap'
import { parseBundle } from '../../src/pki/bundle.js'
import { initCa } from '../../src/pki/ca.js'
import { AGENT_NAME } from '../../src/config/relay-schema.js'
import { CERT_NAME_PATTERN, issueClientCert, listCerts } from '../../src/pki/issue.js'
import { normalizeSerial } from '../../src/pki/serial.js'

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'
const root = t.testdir()
const dir = join(root, 'pki')
await initCa({ dir, hostname: 'relay.test' })
const caPem = await readFile(join(dir, 'ca.crt'), 'utf8')

t.test('a client certificate: CN = name, CA:false, digitalSignature+keyEncipherment, clientAuth only (SECURITY A6)', async (t) => {
  const result = await issueClientCert({ dir, name: 'laptop' })
  const { cert } = parseBundle(result.pemBundle)
  const node = new X509Certificate(cert)
  t.equal(node.subject, 'CN=laptop\nO=Porchlight\nOU=agent', 'an agent certificate unless asked otherwise')
  t.equal(node.ca, false)
  t.same(node.keyUsage, [CLIENT_AUTH])
  t.equal(node.checkIssued(new X509Certificate(caPem)), true)
  t.equal(node.verify(new X509Certificate(caPem).publicKey), true)
  const parsed = forge.pki.certificateFromPem(cert)
  const bc = parsed.getExtension('basicConstraints') as { cA: boolean; critical: boolean }
  t.same([bc.cA, bc.critical], [false, true])
  const ku = parsed.getExtension('keyUsage') as Record<string, boolean>
  t.same([ku['digitalSignature'], ku['keyEncipherment'], ku['keyCertSign'], ku['cRLSign'], ku['critical']], [true, true, false, false, true])
  const eku = parsed.getExtension('extKeyUsage') as Record<string, boolean>
  t.same([eku['clientAuth'], eku['serverAuth'] ?? false], [true, false])
  const days = (Date.parse(node.validTo) - Date.now()) / 86_400_000
  t.ok(days > 364.9 && days <= 365, `365 days by default (got ${days.toFixed(2)})`)
})

t.test('the bundle is cert + key + CA, and the key belongs to the cert', async (t) => {
  const result = await issueClientCert({ dir, name: 'laptop', days: 10 })
  const blocks = [...result.pemBundle.matchAll(/-----BEGIN ([A-Z ]+)-----/g)].map((m) => m[1])
  t.same(blocks, ['CERTIFICATE', 'PRIVATE KEY', 'CERTIFICATE'])
  const bundle = parseBundle(result.pemBundle)
  t.same(bundle.ca, [caPem])
  const fromKey = createPublicKey(createPrivateKey(bundle.key)).export({ type: 'spki', format: 'der' })
  const fromCert = new X509Certificate(bundle.cert).publicKey.export({ type: 'spki', format: 'der' })
  t.equal(Buffer.compare(fromKey, fromCert), 0)
  t.equal(result.file, null, 'no file without out')
})

t.test('serials: 16 random bytes, positive, unique, equal to what Node reports once normalised', async (t) => {
  const serials = new Set<string>()
  for (let i = 0; i < 6; i++) {
    const r = await issueClientCert({ dir, name: `unique-${i}` })
    t.match(r.serial, /^[1-7][0-9a-f]{31}$/)
    t.equal(normalizeSerial(new X509Certificate(parseBundle(r.pemBundle).cert).serialNumber), r.serial)
    serials.add(r.serial)
  }
  t.equal(serials.size, 6)
})

t.test('out: written with mode 0600; an existing file is never overwritten', async (t) => {
  const out = join(root, 'laptop.pem')
  const result = await issueClientCert({ dir, name: 'laptop', out })
  t.equal(result.file, out)
  t.equal(await readFile(out, 'utf8'), result.pemBundle)
  t.equal((await stat(out)).mode & 0o777, 0o600)
  const before = (await listCerts(dir)).length
  await t.rejects(issueClientCert({ dir, name: 'laptop', out }), { code: 'PL_ERR_USAGE' })
  t.equal(await readFile(out, 'utf8'), result.pemBundle)
  t.equal((await listCerts(dir)).length, before, 'nothing recorded for the refused issue')
})

t.test('notBefore / notAfter overrides (for expired and not-yet-valid test certificates)', async (t) => {
  const notBefore = new Date('2020-01-01T00:00:00Z')
  const notAfter = new Date('2020-01-02T00:00:00Z')
  const result = await issueClientCert({ dir, name: 'expired', notBefore, notAfter })
  const node = new X509Certificate(parseBundle(result.pemBundle).cert)
  t.equal(Date.parse(node.validFrom), notBefore.getTime())
  t.equal(Date.parse(node.validTo), notAfter.getTime())
  t.equal(result.notAfter.getTime(), notAfter.getTime())
})

t.test('a visitor certificate differs from an agent\'s only in its OU profile (issue 14)', async (t) => {
  const result = await issueClientCert({ dir, name: 'alice-phone', kind: 'visitor' })
  const node = new X509Certificate(parseBundle(result.pemBundle).cert)
  t.equal(node.subject, 'CN=alice-phone\nO=Porchlight\nOU=visitor')
  t.same(node.keyUsage, [CLIENT_AUTH])
  const file = JSON.parse(await readFile(join(dir, 'issued.json'), 'utf8')) as { certs: Array<{ serial: string; kind?: string }> }
  t.equal(file.certs.find((c) => c.serial === result.serial)?.kind, 'visitor')
})

t.test('issued.json records name, serial, notAfter, revoked:false', async (t) => {
  const result = await issueClientCert({ dir, name: 'recorded', days: 2 })
  const file = JSON.parse(await readFile(join(dir, 'issued.json'), 'utf8')) as { certs: unknown[] }
  t.same(file.certs.at(-1), { name: 'recorded', serial: result.serial, notAfter: result.notAfter.toISOString(), revoked: false, kind: 'agent' })
  const listed = (await listCerts(dir)).find((c) => c.serial === result.serial)
  t.same(listed, { name: 'recorded', serial: result.serial, notAfter: result.notAfter.toISOString(), revoked: false })
})

t.test('concurrent issues in one process all get recorded', async (t) => {
  const before = (await listCerts(dir)).length
  await Promise.all([0, 1, 2, 3].map((i) => issueClientCert({ dir, name: `parallel-${i}` })))
  t.equal((await listCerts(dir)).length, before + 4)
})

t.test('refusals: bad names, bad days, no CA', async (t) => {
  for (const name of ['', 'has space', '-leading-dash', 'a/b', 'x'.repeat(64), 'ümlaut', 'a\nb', 'Laptop', 'a.b']) {
    await t.rejects(issueClientCert({ dir, name }), { code: 'PL_ERR_USAGE' }, JSON.stringify(name))
  }
  await t.rejects(issueClientCert({ dir, name: 'ok', days: 0 }), { code: 'PL_ERR_USAGE' })
  await t.rejects(issueClientCert({ dir: join(root, 'nowhere'), name: 'ok' }), { code: 'PL_ERR_PKI_MISSING' })
})

t.test('a corrupt issued.json is reported with its path, not silently reset', async (t) => {
  const other = join(t.testdir(), 'pki')
  await initCa({ dir: other })
  await writeFile(join(other, 'issued.json'), '{not json')
  await t.rejects(listCerts(other), { code: 'PL_ERR_TLS_FILE', message: /issued\.json/ })
})

t.test('certificate names follow the relay.yaml agent-name rule exactly', (t) => {
  t.equal(CERT_NAME_PATTERN.source, AGENT_NAME.source)
  t.end()
})
