import { readFile } from 'node:fs/promises'
import forge from 'node-forge'
import { PorchlightError } from '../errors.js'
import { buildCrl } from './crl.js'
import { normalizeSerial } from './serial.js'
import { loadCa, pkiPath, readIssued, readRevoked, withPkiLock, writeFileAtomic, writeIssued, writeRevoked, type RevokedRecord } from './store.js'

export interface RevokeCertOptions {
  dir: string
  /** An agent name (revokes all of its certificates) or one serial in hex. */
  nameOrSerial: string
}

/**
 * Revokes by serial or by name and returns the affected serials (already-revoked ones
 * included). revoked.json is written first: it is what a running relay polls, so the
 * revocation takes effect there even if writing the CRL afterwards fails.
 */
export async function revokeCert(opts: RevokeCertOptions): Promise<string[]> {
  const { dir } = opts
  const target = opts.nameOrSerial.trim()
  const ca = await loadCa(dir)
  return withPkiLock(dir, async () => {
    const issued = await readIssued(dir)
    const bySerial = normalizeSerial(target)
    let matches = bySerial === '' ? [] : issued.filter((r) => r.serial === bySerial)
    if (matches.length === 0) matches = issued.filter((r) => r.name === target)
    if (matches.length === 0) throw new PorchlightError('PL_ERR_PKI_UNKNOWN_CERT', [target.slice(0, 80)])

    const { crlNumber, revoked } = await readRevoked(dir)
    const known = new Set(revoked.map((r) => r.serial))
    const now = new Date()
    const added: RevokedRecord[] = matches.filter((m) => !known.has(m.serial)).map((m) => ({ serial: m.serial, name: m.name, revokedAt: now.toISOString() }))
    const all = [...revoked, ...added]
    const nextNumber = crlNumber + 1
    await writeRevoked(dir, nextNumber, all)

    const caNotAfter = forge.pki.certificateFromPem(ca.certPem).validity.notAfter
    const crlPem = buildCrl({
      caCertPem: ca.certPem,
      caKeyPem: ca.keyPem,
      entries: all.map((r) => ({ serial: r.serial, revokedAt: new Date(r.revokedAt) })),
      thisUpdate: now,
      nextUpdate: caNotAfter,
      crlNumber: nextNumber,
    })
    await writeFileAtomic(pkiPath(dir, 'crl'), crlPem, 0o644)

    const serials = new Set(matches.map((m) => m.serial))
    await writeIssued(dir, issued.map((r) => (serials.has(r.serial) ? { ...r, revoked: true } : r)))
    return [...serials]
  })
}

/** The CRL PEM written by initCa/revokeCert, or null if there is none. */
export async function readCrl(dir: string): Promise<string | null> {
  try {
    return await readFile(pkiPath(dir, 'crl'), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw new PorchlightError('PL_ERR_TLS_FILE', [pkiPath(dir, 'crl'), (err as Error).message], { cause: err })
  }
}
