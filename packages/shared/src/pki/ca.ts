import { PorchlightError } from '../errors.js'
import { buildCrl } from './crl.js'
import { generateRsaKeyPair } from './keys.js'
import { randomSerialHex } from './serial.js'
import { ensureDir, fileExists, pkiPath, withPkiLock, writeFileAtomic, writeIssued, writeRevoked } from './store.js'
import { altNamesFor, BACKDATE_MS, buildCertificate } from './x509.js'

export interface InitCaOptions {
  dir: string
  /** The relay's public name; goes into server.crt's SANs with localhost, 127.0.0.1 and ::1. */
  hostname?: string
  /** Replace an existing CA (every certificate issued by the old one stops working). */
  force?: boolean
  /** Validity of the CA and server certificates; default 3650 days. */
  days?: number
}

export interface InitCaResult {
  caCertFile: string
  caKeyFile: string
  serverCertFile: string
  serverKeyFile: string
  /** SANs written into server.crt. */
  serverNames: { dns: string[]; ips: string[] }
  notAfter: Date
}

const DAY_MS = 24 * 3600 * 1000

/**
 * Creates the relay's own CA (ca.crt, ca.key) and a server certificate for the agents listener
 * (server.crt, server.key) signed by it, plus empty issued/revoked lists and an empty CRL.
 */
export async function initCa(opts: InitCaOptions): Promise<InitCaResult> {
  const { dir, hostname = 'localhost', force = false, days = 3650 } = opts
  checkDays(days)
  checkHostname(hostname)
  await ensureDir(dir)
  return withPkiLock(dir, async () => {
    if (!force && (await fileExists(pkiPath(dir, 'caKey')))) throw new PorchlightError('PL_ERR_PKI_EXISTS', [dir])
    const [caKeys, serverKeys] = await Promise.all([generateRsaKeyPair(), generateRsaKeyPair()])
    const now = Date.now()
    const notBefore = new Date(now - BACKDATE_MS)
    const notAfter = new Date(now + days * DAY_MS)
    const caCertPem = buildCertificate({
      commonName: `Porchlight CA ${hostname}`.slice(0, 64),
      serialHex: randomSerialHex(),
      notBefore,
      notAfter,
      publicKeyPem: caKeys.publicKeyPem,
      signerKeyPem: caKeys.privateKeyPem,
      profile: 'ca',
    })
    const serverNames = altNamesFor([hostname, 'localhost', '127.0.0.1', '::1'])
    const serverCertPem = buildCertificate({
      commonName: hostname.slice(0, 64),
      serialHex: randomSerialHex(),
      notBefore,
      notAfter,
      publicKeyPem: serverKeys.publicKeyPem,
      signerKeyPem: caKeys.privateKeyPem,
      issuerCertPem: caCertPem,
      profile: 'server',
      altNames: serverNames,
    })
    const crlPem = buildCrl({ caCertPem, caKeyPem: caKeys.privateKeyPem, entries: [], thisUpdate: new Date(now), nextUpdate: notAfter, crlNumber: 1 })
    // Keys first: a crash midway leaves ca.key present, so a rerun needs --force rather than
    // silently pairing a new key with an old certificate.
    await writeFileAtomic(pkiPath(dir, 'caKey'), caKeys.privateKeyPem, 0o600)
    await writeFileAtomic(pkiPath(dir, 'serverKey'), serverKeys.privateKeyPem, 0o600)
    await writeFileAtomic(pkiPath(dir, 'caCert'), caCertPem, 0o644)
    await writeFileAtomic(pkiPath(dir, 'serverCert'), serverCertPem, 0o644)
    // A new CA invalidates every earlier certificate, so the lists start empty.
    await writeIssued(dir, [])
    await writeRevoked(dir, 1, [])
    await writeFileAtomic(pkiPath(dir, 'crl'), crlPem, 0o644)
    return {
      caCertFile: pkiPath(dir, 'caCert'),
      caKeyFile: pkiPath(dir, 'caKey'),
      serverCertFile: pkiPath(dir, 'serverCert'),
      serverKeyFile: pkiPath(dir, 'serverKey'),
      serverNames,
      notAfter,
    }
  })
}

export function checkDays(days: number): void {
  if (!Number.isInteger(days) || days < 1 || days > 36500) {
    throw new PorchlightError('PL_ERR_USAGE', [`days must be a whole number from 1 to 36500, got ${String(days)}`])
  }
}

function checkHostname(hostname: string): void {
  if (!/^[A-Za-z0-9.:[\]_-]{1,253}$/.test(hostname)) {
    throw new PorchlightError('PL_ERR_USAGE', [`invalid hostname ${JSON.stringify(hostname.slice(0, 80))}`])
  }
}
