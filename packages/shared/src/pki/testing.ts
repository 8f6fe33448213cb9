import { generateRsaKeyPair } from './keys.js'
import { randomSerialHex } from './serial.js'
import { altNamesFor, buildCertificate, type CertProfile } from './x509.js'

/**
 * Throwaway certificates for tests only (wrong CA, self-signed look-alikes, forged chains,
 * wrong key usage). Nothing in packages/src imports this file.
 */
export interface TestCa {
  certPem: string
  keyPem: string
}

export interface TestCert {
  certPem: string
  keyPem: string
  serial: string
}

const DAY_MS = 24 * 3600 * 1000

/** A fresh CA; pass the real CA's CN to make a look-alike with an identical subject. */
export async function createTestCa(opts: { commonName?: string; organization?: string } = {}): Promise<TestCa> {
  const keys = await generateRsaKeyPair()
  const now = Date.now()
  const certPem = buildCertificate({
    commonName: opts.commonName ?? 'Porchlight Test CA',
    ...(opts.organization === undefined ? {} : { organization: opts.organization }),
    serialHex: randomSerialHex(),
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 30 * DAY_MS),
    publicKeyPem: keys.publicKeyPem,
    signerKeyPem: keys.privateKeyPem,
    profile: 'ca',
  })
  return { certPem, keyPem: keys.privateKeyPem }
}

export interface TestCertOptions {
  commonName: string
  /** Default 'client'. 'ca' makes an intermediate-looking certificate. */
  profile?: CertProfile
  notBefore?: Date
  notAfter?: Date
  /** Server profile: hostnames / IPs for the SAN; default [commonName]. */
  hostnames?: string[]
}

/**
 * A certificate signed by `issuer` (a CA, or any certificate + key, e.g. a leaf to forge a chain);
 * `issuer` null makes it self-signed.
 */
export async function createTestCert(issuer: TestCa | null, opts: TestCertOptions): Promise<TestCert> {
  const keys = await generateRsaKeyPair()
  const now = Date.now()
  const serial = randomSerialHex()
  const certPem = buildCertificate({
    commonName: opts.commonName,
    serialHex: serial,
    notBefore: opts.notBefore ?? new Date(now - DAY_MS),
    notAfter: opts.notAfter ?? new Date(now + 30 * DAY_MS),
    publicKeyPem: keys.publicKeyPem,
    signerKeyPem: issuer ? issuer.keyPem : keys.privateKeyPem,
    ...(issuer ? { issuerCertPem: issuer.certPem } : {}),
    profile: opts.profile ?? 'client',
    altNames: altNamesFor(opts.hostnames ?? [opts.commonName]),
  })
  return { certPem, keyPem: keys.privateKeyPem, serial }
}
