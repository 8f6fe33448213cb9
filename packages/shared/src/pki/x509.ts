import { sign } from 'node:crypto'
import { isIP } from 'node:net'
import forge from 'node-forge'

/**
 * Certificate construction. node-forge only assembles the ASN.1 structures; the signature is
 * made by Node's OpenSSL (`crypto.sign`), which is fast and keeps forge's pure-JS RSA off the
 * event loop. Nothing here verifies anything: verification is OpenSSL's job in the TLS stack.
 */
export type CertProfile = 'ca' | 'server' | 'client' | 'peer'

/**
 * Every certificate starts this long before it is made, as Let's Encrypt's do: a peer whose clock
 * is up to an hour slow (an old laptop before NTP caught up) still accepts one issued just now.
 */
export const BACKDATE_MS = 60 * 60 * 1000

export interface CertificateSpec {
  /** Subject common name (the agent name for client certificates). */
  commonName: string
  /** Subject organisation; defaults to "Porchlight". */
  organization?: string
  /** Subject organisational unit: the client profile ("agent" or "visitor") for client certificates. */
  organizationalUnit?: string
  serialHex: string
  notBefore: Date
  notAfter: Date
  /** SPKI PEM of the subject's RSA public key. */
  publicKeyPem: string
  /** PEM of the signing key: the issuer's, or the subject's own for a self-signed certificate. */
  signerKeyPem: string
  /** PEM of the issuing certificate; omitted for a self-signed certificate. */
  issuerCertPem?: string
  /** ca: CA:true pathlen 0, keyCertSign+cRLSign; server: serverAuth + SANs; client: clientAuth; peer: both + SANs. */
  profile: CertProfile
  /** Server and peer profiles only: DNS names and IP addresses for subjectAltName. */
  altNames?: { dns: string[]; ips: string[] }
}

const SIGNATURE_OID = forge.pki.oids['sha256WithRSAEncryption'] as string

// forge exposes getTBSCertificate at runtime but its typings omit it.
const pkiInternals = forge.pki as unknown as { getTBSCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1 }

/** Builds and signs one X.509 v3 certificate; returns its PEM. */
export function buildCertificate(spec: CertificateSpec): string {
  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.publicKeyFromPem(spec.publicKeyPem)
  cert.serialNumber = spec.serialHex
  cert.validity.notBefore = spec.notBefore
  cert.validity.notAfter = spec.notAfter
  const subject = distinguishedName(spec.commonName, spec.organization ?? 'Porchlight', spec.organizationalUnit)
  cert.setSubject(subject)
  const issuer = spec.issuerCertPem === undefined ? null : forge.pki.certificateFromPem(spec.issuerCertPem)
  cert.setIssuer(issuer ? issuer.subject.attributes : subject)

  // Authority key id = the issuer's subject key id (its own for a self-signed certificate).
  const authorityKeyId = (issuer ?? cert).generateSubjectKeyIdentifier().getBytes()
  cert.setExtensions([...profileExtensions(spec), { name: 'subjectKeyIdentifier' }, { name: 'authorityKeyIdentifier', keyIdentifier: authorityKeyId }])

  cert.signatureOid = SIGNATURE_OID
  cert.siginfo.algorithmOid = SIGNATURE_OID
  const tbs = pkiInternals.getTBSCertificate(cert)
  const tbsDer = Buffer.from(forge.asn1.toDer(tbs).getBytes(), 'binary')
  cert.tbsCertificate = tbs
  cert.signature = sign('sha256', tbsDer, spec.signerKeyPem).toString('binary')
  // forge writes CRLF line ends; files we write use LF throughout.
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n')
}

function profileExtensions(spec: CertificateSpec): object[] {
  switch (spec.profile) {
    case 'ca':
      return [
        { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      ]
    case 'server':
      return [
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: subjectAltNames(spec.altNames ?? { dns: [spec.commonName], ips: [] }) },
      ]
    case 'peer':
      // A relay on listen.peer with cluster.peer_tls: it serves and dials with one certificate.
      return [
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
        { name: 'subjectAltName', altNames: subjectAltNames(spec.altNames ?? { dns: [spec.commonName], ips: [] }) },
      ]
    case 'client':
      return [
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', clientAuth: true },
      ]
  }
}

// GeneralName types from RFC 5280: 2 = dNSName, 7 = iPAddress.
function subjectAltNames(names: { dns: string[]; ips: string[] }): object[] {
  return [...names.dns.map((value) => ({ type: 2, value })), ...names.ips.map((ip) => ({ type: 7, ip }))]
}

// UTF8String rather than forge's PrintableString default, which cannot hold '_' or '@'.
function distinguishedName(commonName: string, organization: string, unit?: string): forge.pki.CertificateField[] {
  const utf8 = forge.asn1.Type.UTF8 as unknown as forge.asn1.Class
  return [
    { shortName: 'CN', value: commonName, valueTagClass: utf8 },
    { shortName: 'O', value: organization, valueTagClass: utf8 },
    ...(unit === undefined ? [] : [{ shortName: 'OU', value: unit, valueTagClass: utf8 }]),
  ]
}

/** Splits hostnames into SAN buckets: IP literals go to iPAddress, the rest to dNSName; deduplicated. */
export function altNamesFor(hostnames: readonly string[]): { dns: string[]; ips: string[] } {
  const dns = new Set<string>()
  const ips = new Set<string>()
  for (const raw of hostnames) {
    const name = raw.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1')
    if (name === '') continue
    if (isIP(name) !== 0) ips.add(name)
    else dns.add(name)
  }
  return { dns: [...dns], ips: [...ips] }
}
