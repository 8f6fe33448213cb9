import { createPublicKey, verify, X509Certificate } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import forge from 'node-forge'
import t from 'tap'
import { initCa } from '../../src/pki/ca.js'
import { issueClientCert, listCerts } from '../../src/pki/issue.js'
import { revokeCert } from '../../src/pki/revocation.js'
import { loadRevokedSerials } from '../../src/pki/revoked-serials.js'
import { normalizeSerial, randomSerialHex } from '../../src/pki/serial.js'
import { generateRsaKeyPair } from '../../src/pki/keys.js'
import { buildCertificate } from '../../src/pki/x509.js'

/** Reads a CRL's number, revoked serials and signature validity (Node's OpenSSL checks the signature). */
async function readCrl(dir: string): Promise<{ serials: string[]; crlNumber: number; signatureOk: boolean; issuerMatches: boolean }> {
  const pem = await readFile(join(dir, 'ca.crl'), 'utf8')
  const der = forge.util.decode64(pem.replace(/-----[^-]+-----|\s/g, ''))
  const crl = forge.asn1.fromDer(der)
  const [tbs, , sig] = crl.value as forge.asn1.Asn1[]
  const tbsParts = tbs!.value as forge.asn1.Asn1[]
  const revokedSeq = tbsParts.find((p, i) => i > 4 && p.tagClass === forge.asn1.Class.UNIVERSAL && p.type === forge.asn1.Type.SEQUENCE)
  const serials = revokedSeq
    ? (revokedSeq.value as forge.asn1.Asn1[]).map((entry) => normalizeSerial(forge.util.bytesToHex(((entry.value as forge.asn1.Asn1[])[0]!.value as string))))
    : []
  const exts = tbsParts.at(-1)!.value as forge.asn1.Asn1[]
  const crlNumberExt = (exts[0]!.value as forge.asn1.Asn1[]).find((e) => forge.asn1.derToOid((e.value as forge.asn1.Asn1[])[0]!.value as string) === '2.5.29.20')!
  const crlNumberDer = (crlNumberExt.value as forge.asn1.Asn1[])[1]!.value as string
  const crlNumber = forge.asn1.derToInteger(forge.util.createBuffer(forge.asn1.fromDer(crlNumberDer).value as string))
  const caPem = await readFile(join(dir, 'ca.crt'), 'utf8')
  const tbsDer = Buffer.from(forge.asn1.toDer(tbs!).getBytes(), 'binary')
  const signature = Buffer.from((sig!.value as string).slice(1), 'binary')
  const signatureOk = verify('sha256', tbsDer, createPublicKey(caPem), signature)
  const issuerDer = forge.asn1.toDer(tbsParts[2]!).getBytes()
  const caSubjectDer = forge.asn1.toDer(forge.pki.distinguishedNameToAsn1(forge.pki.certificateFromPem(caPem).subject)).getBytes()
  return { serials, crlNumber, signatureOk, issuerMatches: issuerDer === caSubjectDer }
}

t.test('revoke by serial, then by name; revoked.json, the CRL and the listing agree', async (t) => {
  const dir = join(t.testdir(), 'pki')
  await initCa({ dir })
  const a1 = await issueClientCert({ dir, name: 'alpha' })
  const a2 = await issueClientCert({ dir, name: 'alpha' })
  const b1 = await issueClientCert({ dir, name: 'beta' })

  const initial = await readCrl(dir)
  t.same(initial, { serials: [], crlNumber: 1, signatureOk: true, issuerMatches: true })

  t.same(await revokeCert({ dir, nameOrSerial: a1.serial.toUpperCase() }), [a1.serial])
  t.same([...loadRevokedSerials(dir)], [a1.serial])
  t.same(await readCrl(dir), { serials: [a1.serial], crlNumber: 2, signatureOk: true, issuerMatches: true })

  t.same((await revokeCert({ dir, nameOrSerial: 'alpha' })).sort(), [a1.serial, a2.serial].sort(), 'a name revokes all its certs')
  t.same([...loadRevokedSerials(dir)].sort(), [a1.serial, a2.serial].sort())
  const crl = await readCrl(dir)
  t.same(crl.serials.sort(), [a1.serial, a2.serial].sort())
  t.equal(crl.crlNumber, 3)
  t.equal(crl.signatureOk, true)

  const listing = await listCerts(dir)
  t.same(listing.map((c) => [c.name, c.revoked]), [['alpha', true], ['alpha', true], ['beta', false]])
  t.notOk(loadRevokedSerials(dir).has(b1.serial))
})

t.test('revoking something unknown is PL_ERR_PKI_UNKNOWN_CERT; no CA is PL_ERR_PKI_MISSING', async (t) => {
  const dir = join(t.testdir(), 'pki')
  await initCa({ dir })
  await issueClientCert({ dir, name: 'alpha' })
  await t.rejects(revokeCert({ dir, nameOrSerial: 'gamma' }), { code: 'PL_ERR_PKI_UNKNOWN_CERT' })
  await t.rejects(revokeCert({ dir, nameOrSerial: randomSerialHex() }), { code: 'PL_ERR_PKI_UNKNOWN_CERT' })
  await t.rejects(revokeCert({ dir: join(t.testdir(), 'none'), nameOrSerial: 'alpha' }), { code: 'PL_ERR_PKI_MISSING' })
  t.equal(loadRevokedSerials(dir).size, 0)
})

t.test('serial normalisation matches Node, including a leading zero nibble', async (t) => {
  const keys = await generateRsaKeyPair()
  const cases = ['0a1b2c3d4e5f60718293a4b5c6d7e8f9', '7fffffffffffffffffffffffffffffff', '10000000000000000000000000000001', '01']
  for (const serialHex of cases) {
    const pem = buildCertificate({
      commonName: 'n', serialHex, notBefore: new Date(), notAfter: new Date(Date.now() + 86_400_000),
      publicKeyPem: keys.publicKeyPem, signerKeyPem: keys.privateKeyPem, profile: 'client',
    })
    const nodeSerial = new X509Certificate(pem).serialNumber
    t.equal(normalizeSerial(nodeSerial), normalizeSerial(serialHex), `${serialHex} vs Node's ${nodeSerial}`)
  }
  t.same(['0A1B', '0a1b', 'A1B', '0a:1b', '00', 'xyz', ''].map(normalizeSerial), ['a1b', 'a1b', 'a1b', 'a1b', '0', '', ''])
})

t.test('loadRevokedSerials: missing file is empty; hand-edited serials are normalised; corrupt fails closed', async (t) => {
  const dir = t.testdir()
  t.equal(loadRevokedSerials(dir).size, 0)
  await writeFile(join(dir, 'revoked.json'), JSON.stringify({ version: 1, crlNumber: 4, revoked: [{ serial: '0ABC', name: 'x', revokedAt: '2026-01-01T00:00:00Z' }] }))
  t.same([...loadRevokedSerials(dir)], ['abc'])
  await writeFile(join(dir, 'revoked.json'), JSON.stringify({ version: 1, revoked: [{ serial: 'zz', name: 'x', revokedAt: 'now' }] }))
  t.throws(() => loadRevokedSerials(dir), { code: 'PL_ERR_TLS_FILE' })
  await writeFile(join(dir, 'revoked.json'), '[')
  t.throws(() => loadRevokedSerials(dir), { code: 'PL_ERR_TLS_FILE' })
})
