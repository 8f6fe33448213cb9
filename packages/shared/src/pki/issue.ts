import { writeFile } from 'node:fs/promises'
import { PorchlightError } from '../errors.js'
import { checkDays } from './ca.js'
import { generateRsaKeyPair } from './keys.js'
import { randomSerialHex } from './serial.js'
import { fileExists, loadCa, readIssued, readRevoked, withPkiLock, writeIssued } from './store.js'
import { BACKDATE_MS, buildCertificate } from './x509.js'

export interface IssueClientCertOptions {
  dir: string
  /** Agent name; becomes the certificate's CN, which the relay matches against the agent. */
  name: string
  /** Validity in days from now; default 365. Ignored when notAfter is given. */
  days?: number
  /** Write the bundle here (mode 0600); refuses to overwrite an existing file. */
  out?: string
  /** Overrides for tests (expired / not-yet-valid certificates). */
  notBefore?: Date
  notAfter?: Date
  /**
   * Who presents it: an agent (authenticates its link; the default) or a visitor (opens sites with
   * `access.client_certs`). Written as the subject's OU; neither kind is accepted for the other.
   */
  kind?: ClientCertKind
}

export type ClientCertKind = 'agent' | 'visitor'

export interface IssueClientCertResult {
  name: string
  serial: string
  notAfter: Date
  /** Certificate + private key + CA certificate, PEM, concatenated. */
  pemBundle: string
  /** Where the bundle was written, or null when `out` was not given. */
  file: string | null
}

export interface CertListing {
  name: string
  serial: string
  /** ISO-8601. */
  notAfter: string
  revoked: boolean
}

const DAY_MS = 24 * 3600 * 1000
/**
 * Agent names exactly as relay.yaml allows them (config's AGENT_NAME; a test keeps the two equal):
 * a certificate for a name no agent can have would never be accepted.
 */
export const CERT_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/

export function isValidCertName(name: string): boolean {
  return CERT_NAME_PATTERN.test(name)
}

/** Issues a client certificate for agent `name`, signed by the CA in `dir`, and records it. */
export async function issueClientCert(opts: IssueClientCertOptions): Promise<IssueClientCertResult> {
  const { dir, name, days = 365 } = opts
  if (!isValidCertName(name)) {
    throw new PorchlightError('PL_ERR_USAGE', [`invalid certificate name ${JSON.stringify(name.slice(0, 80))}: an agent name is lowercase letters, digits, '_' or '-' (at most 63)`])
  }
  if (opts.notAfter === undefined) checkDays(days)
  if (opts.out !== undefined && (await fileExists(opts.out))) {
    throw new PorchlightError('PL_ERR_USAGE', [`${opts.out} already exists; choose another --out or remove it`])
  }
  const ca = await loadCa(dir)
  const keys = await generateRsaKeyPair()
  const now = Date.now()
  const notBefore = opts.notBefore ?? new Date(now - BACKDATE_MS)
  const notAfter = opts.notAfter ?? new Date(now + days * DAY_MS)
  const serial = randomSerialHex()
  const certPem = buildCertificate({
    commonName: name,
    serialHex: serial,
    notBefore,
    notAfter,
    publicKeyPem: keys.publicKeyPem,
    signerKeyPem: ca.keyPem,
    issuerCertPem: ca.certPem,
    profile: 'client',
    organizationalUnit: opts.kind ?? 'agent',
  })
  const pemBundle = `${certPem}${keys.privateKeyPem}${ca.certPem}`
  if (opts.out !== undefined) {
    try {
      await writeFile(opts.out, pemBundle, { mode: 0o600, flag: 'wx' })
    } catch (err) {
      throw new PorchlightError('PL_ERR_TLS_FILE', [opts.out, (err as Error).message], { cause: err })
    }
  }
  await withPkiLock(dir, async () => {
    const issued = await readIssued(dir)
    issued.push({ name, serial, notAfter: notAfter.toISOString(), revoked: false, kind: opts.kind ?? 'agent' })
    await writeIssued(dir, issued)
  })
  return { name, serial, notAfter, pemBundle, file: opts.out ?? null }
}

/** Every certificate issued from `dir`, oldest first; `revoked` also reflects revoked.json. */
export async function listCerts(dir: string): Promise<CertListing[]> {
  const [issued, { revoked }] = await Promise.all([readIssued(dir), readRevoked(dir)])
  const revokedSet = new Set(revoked.map((r) => r.serial))
  return issued.map((r) => ({ name: r.name, serial: r.serial, notAfter: r.notAfter, revoked: r.revoked || revokedSet.has(r.serial) }))
}
