import { createHash } from 'node:crypto'
import { deflateRawSync, inflateRawSync } from 'node:zlib'
import { PorchlightError } from '../errors.js'

/**
 * The enrolment code `porchlight-relay agent add` prints and `porchlight login` reads: everything
 * a laptop needs to join a relay, on one line.
 *
 *   pl1_<base64url( deflate-raw( JSON ) || first 4 bytes of sha256(JSON) )>
 *
 * The prefix names the format and its version, so a code from a newer relay is refused with
 * "update the agent" instead of garbage, and a truncated or mistyped code fails its checksum
 * instead of yielding a subtly wrong token. The JSON keys are short because the line is copied
 * by hand between machines; deflate takes back most of what base64 costs the certificate.
 */
export interface EnrolmentCode {
  /** ws:// or wss:// URL of the relay's agents listener. */
  relay: string
  /** Agent name in relay.yaml (`agents.NAME`). */
  agent: string
  /** The agent's token (relay.yaml keeps only its sha256). */
  token: string
  /**
   * Lowercase hex SHA-256 of the relay CA certificate's DER: login pins the certificate in the
   * chain the relay presents whose fingerprint is this. null: the relay's agents certificate is
   * from a public CA (or the link is plain ws://), so system roots decide.
   */
  caSha256: string | null
  /** PEM client certificate and its private key (`agent add --cert`); the CA comes from the pin. */
  clientCert: { cert: string; key: string } | null
}

export const ENROL_PREFIX = 'pl1_'
const CHECKSUM_BYTES = 4
/** A code with a certificate is about 3 KB; anything far larger is not one of ours. */
const MAX_CODE_CHARS = 16 * 1024

interface Wire {
  v: 1
  r: string
  a: string
  t: string
  f?: string
  c?: string
  k?: string
}

export function encodeEnrolmentCode(code: EnrolmentCode): string {
  const wire: Wire = { v: 1, r: code.relay, a: code.agent, t: code.token }
  if (code.caSha256 !== null) wire.f = Buffer.from(code.caSha256, 'hex').toString('base64url')
  if (code.clientCert !== null) {
    wire.c = pemBody(code.clientCert.cert)
    wire.k = pemBody(code.clientCert.key)
  }
  const json = Buffer.from(JSON.stringify(wire), 'utf8')
  return ENROL_PREFIX + Buffer.concat([deflateRawSync(json, { level: 9 }), checksum(json)]).toString('base64url')
}

/** Parses a code; every failure is PL_ERR_ENROL_CODE with a reason a person can act on. */
export function decodeEnrolmentCode(input: string): EnrolmentCode {
  const text = input.trim()
  const bad = (reason: string): PorchlightError => new PorchlightError('PL_ERR_ENROL_CODE', [reason])
  const version = /^pl(\d+)_/.exec(text)
  if (version === null) throw bad(`it does not start with ${ENROL_PREFIX}; paste the whole code that \`porchlight-relay agent add\` printed`)
  if (version[1] !== '1') throw bad(`format version ${version[1]} is newer than this porchlight understands; update the agent`)
  const body = text.slice(ENROL_PREFIX.length)
  if (body === '') throw bad('it is damaged (nothing after pl1_); copy it again in full')
  if (body.length > MAX_CODE_CHARS) throw bad('it is far too long to be an enrolment code')
  if (!/^[A-Za-z0-9_-]+$/.test(body)) throw bad('it contains characters that are not in a code (a line break or a space in the middle?)')
  const bytes = Buffer.from(body, 'base64url')
  const damaged = bad('it is damaged (checksum mismatch); copy it again in full')
  if (bytes.length <= CHECKSUM_BYTES) throw damaged
  let json: Buffer
  try {
    json = inflateRawSync(bytes.subarray(0, bytes.length - CHECKSUM_BYTES), { maxOutputLength: 64 * 1024 })
  } catch {
    throw damaged
  }
  if (!checksum(json).equals(bytes.subarray(bytes.length - CHECKSUM_BYTES))) throw damaged
  let wire: Partial<Record<keyof Wire, unknown>>
  try {
    wire = JSON.parse(json.toString('utf8')) as Partial<Record<keyof Wire, unknown>>
  } catch {
    throw damaged
  }
  const field = (key: keyof Wire, what: string): string => {
    const value = wire[key]
    if (typeof value !== 'string' || value === '') throw bad(`it has no ${what}`)
    return value
  }
  const relay = field('r', 'relay URL')
  if (!/^wss?:\/\/[^\s]+$/.test(relay)) throw bad(`its relay URL ${JSON.stringify(relay.slice(0, 100))} is not ws:// or wss://`)
  const agent = field('a', 'agent name')
  const token = field('t', 'token')
  let caSha256: string | null = null
  if (wire.f !== undefined) {
    const fp = Buffer.from(field('f', 'CA fingerprint'), 'base64url')
    if (fp.length !== 32) throw bad('its CA fingerprint is not a SHA-256')
    caSha256 = fp.toString('hex')
  }
  let clientCert: EnrolmentCode['clientCert'] = null
  if (wire.c !== undefined || wire.k !== undefined) {
    clientCert = { cert: toPem('CERTIFICATE', field('c', 'certificate')), key: toPem('PRIVATE KEY', field('k', 'private key')) }
  }
  return { relay, agent, token, caSha256, clientCert }
}

/** The base64 body of the first PEM block (its label is implied by the field). */
function pemBody(pem: string): string {
  const m = /-----BEGIN ([A-Z ]+)-----([\s\S]*?)-----END \1-----/.exec(pem)
  if (m === null) throw new PorchlightError('PL_ERR_TLS_FILE', ['client certificate bundle', 'no PEM block'])
  if (m[1] === 'RSA PRIVATE KEY' || m[1] === 'EC PRIVATE KEY') throw new PorchlightError('PL_ERR_TLS_FILE', ['client certificate bundle', 'expected a PKCS#8 "PRIVATE KEY"'])
  return Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64').toString('base64url')
}

function toPem(label: string, base64url: string): string {
  const lines = Buffer.from(base64url, 'base64url').toString('base64').match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`
}

function checksum(json: Buffer): Buffer {
  return createHash('sha256').update(json).digest().subarray(0, CHECKSUM_BYTES)
}

/** Lowercase hex SHA-256 of a PEM certificate's DER: what `caSha256` holds. */
export function certificateSha256(pem: string): string {
  const m = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(pem)
  if (m === null) throw new PorchlightError('PL_ERR_TLS_FILE', ['certificate', 'no CERTIFICATE block'])
  return createHash('sha256').update(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64')).digest('hex')
}

/** "AB:CD:…" as OpenSSL and browsers show it, for messages a person compares by eye. */
export function formatFingerprint(hex: string): string {
  return hex.toUpperCase().match(/.{2}/g)?.join(':') ?? hex
}
