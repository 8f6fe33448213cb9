import { sign } from 'node:crypto'
import forge from 'node-forge'
import { derToPem } from './pem.js'

/**
 * X.509 v2 CRLs. node-forge has no CRL API, so the ASN.1 (RFC 5280 §5.1) is assembled here with
 * forge's encoder and signed by Node's OpenSSL. The relay's authoritative revocation check is the
 * serial set in revoked.json; this file exists so OpenSSL (`crl:` TLS option, `openssl verify
 * -crl_check`) and other tools can use the same list.
 */
export interface CrlEntry {
  /** Normalised lowercase hex serial. */
  serial: string
  revokedAt: Date
}

export interface CrlSpec {
  caCertPem: string
  caKeyPem: string
  entries: readonly CrlEntry[]
  thisUpdate: Date
  /** When a fresher CRL is promised; OpenSSL rejects the CRL after this date (CRL_HAS_EXPIRED). */
  nextUpdate: Date
  /** Monotonic CRL number (cRLNumber extension). */
  crlNumber: number
}

const { asn1 } = forge
const SIGNATURE_OID = forge.pki.oids['sha256WithRSAEncryption'] as string
const CRL_NUMBER_OID = '2.5.29.20'
const AUTHORITY_KEY_ID_OID = '2.5.29.35'

export function buildCrl(spec: CrlSpec): string {
  const ca = forge.pki.certificateFromPem(spec.caCertPem)
  const algorithm = seq([oid(SIGNATURE_OID), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, '')])
  const tbsParts: forge.asn1.Asn1[] = [
    integerFromHex('1'), // v2
    algorithm,
    forge.pki.distinguishedNameToAsn1(ca.subject),
    time(spec.thisUpdate),
    time(spec.nextUpdate),
  ]
  // An empty revokedCertificates sequence must be omitted, not encoded empty.
  if (spec.entries.length > 0) {
    tbsParts.push(seq(spec.entries.map((e) => seq([integerFromHex(e.serial), time(e.revokedAt)]))))
  }
  const authorityKeyId = seq([asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0 as forge.asn1.Type, false, ca.generateSubjectKeyIdentifier().getBytes())])
  tbsParts.push(asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0 as forge.asn1.Type, true, [seq([
    extension(AUTHORITY_KEY_ID_OID, authorityKeyId),
    extension(CRL_NUMBER_OID, integerFromHex(spec.crlNumber.toString(16))),
  ])]))
  const tbs = seq(tbsParts)
  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), 'binary')
  const signature = sign('sha256', tbsDer, spec.caKeyPem)
  const crl = seq([tbs, algorithm, asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, `\x00${signature.toString('binary')}`)])
  return derToPem('X509 CRL', Buffer.from(asn1.toDer(crl).getBytes(), 'binary'))
}

function seq(items: forge.asn1.Asn1[]): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items)
}

function oid(value: string): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(value).getBytes())
}

/** A non-negative DER INTEGER from hex: even length, one 0x00 pad when the top bit is set. */
function integerFromHex(hex: string): forge.asn1.Asn1 {
  let even = hex.length % 2 === 1 ? `0${hex}` : hex
  if (/^[89a-f]/i.test(even)) even = `00${even}`
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, forge.util.hexToBytes(even))
}

// RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
function time(date: Date): forge.asn1.Asn1 {
  return date.getUTCFullYear() < 2050
    ? asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(date))
    : asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(date))
}

function extension(id: string, value: forge.asn1.Asn1): forge.asn1.Asn1 {
  return seq([oid(id), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, asn1.toDer(value).getBytes())])
}
