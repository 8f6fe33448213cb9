import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import tls, { type SecureContext } from 'node:tls'
import { PorchlightError } from '@porchlight/shared/errors'

/**
 * Certificates for the visitors' HTTPS listener, chosen by SNI: each `public_tls.certs` entry is
 * served for the DNS names in its subjectAltName (exact names first, then `*.` wildcards one
 * label deep); a client without SNI, or with a name no certificate covers, gets the first entry.
 */
export interface CertFiles {
  cert: string
  key: string
}

interface Entry {
  names: string[]
  context: SecureContext
}

export interface SniCertificates {
  /** Options for https.createServer: the default pair plus an SNICallback. */
  cert: Buffer
  key: Buffer
  SNICallback: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void
  /** Which entry (index into the config list) serves a name; for logs and tests. */
  pick(servername: string): number
  /** True when an entry's names cover `servername` (exactly or by a wildcard), not merely the fallback. */
  covers(servername: string): boolean
}

export function loadSniCertificates(files: readonly CertFiles[], extra: tls.SecureContextOptions = {}): SniCertificates {
  if (files.length === 0) throw new PorchlightError('PL_ERR_TLS_FILE', ['listen.public_tls.certs', 'no certificates configured'])
  const loaded = files.map((f) => ({ cert: read(f.cert), key: read(f.key), file: f.cert }))
  const entries: Entry[] = loaded.map((l) => {
    let context: SecureContext
    try {
      context = tls.createSecureContext({ ...extra, cert: l.cert, key: l.key })
    } catch (err) {
      throw new PorchlightError('PL_ERR_TLS_FILE', [l.file, (err as Error).message], { cause: err })
    }
    return { names: dnsNames(l.cert, l.file), context }
  })
  const match = (servername: string): number => {
    const name = servername.toLowerCase().replace(/\.$/, '')
    const exact = entries.findIndex((e) => e.names.includes(name))
    if (exact !== -1) return exact
    const parent = name.slice(name.indexOf('.') + 1)
    return entries.findIndex((e) => e.names.includes(`*.${parent}`))
  }
  const pick = (servername: string): number => Math.max(0, match(servername))
  return {
    cert: loaded[0]!.cert,
    key: loaded[0]!.key,
    SNICallback: (servername, cb) => cb(null, entries[pick(servername)]!.context),
    pick,
    covers: (servername) => match(servername) !== -1,
  }
}

function dnsNames(pem: Buffer, file: string): string[] {
  try {
    const san = new X509Certificate(pem).subjectAltName ?? ''
    return san.split(',').map((s) => s.trim()).filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4).toLowerCase())
  } catch (err) {
    throw new PorchlightError('PL_ERR_TLS_FILE', [file, 'not a PEM certificate'], { cause: err })
  }
}

function read(file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw new PorchlightError('PL_ERR_TLS_FILE', [file, (err as Error).message], { cause: err })
  }
}
