import { readFileSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { constants } from 'node:crypto'
import { createSecureContext, type TLSSocket, type TlsOptions } from 'node:tls'
import { PorchlightError, type ErrorCode } from '@porchlight/shared/errors'
import { loadRevokedSerials, normalizeSerial, pkiPath, splitPemBlocks } from '@porchlight/shared/pki/runtime'

/**
 * TLS for the agents listener: server certificate, client certificates from the relay's own CA,
 * revocation by serial. OpenSSL verifies the chain and dates during the handshake; the relay
 * reads its verdict afterwards (socket.authorized / authorizationError) so it can answer a
 * plain-text 403 that tells the agent why, instead of a bare TLS alert.
 */
export interface AgentTlsFiles {
  /** PEM certificate (chain) the listener presents. */
  cert: string
  /** Its private key. */
  key: string
  /**
   * The relay CA's certificate (pki/ca.crt): the only issuer accepted for client certificates.
   * null: no PKI, so no client certificate is requested (checkClientCert then says none was sent).
   */
  caFile: string | null
  /** Optional CRL (pki/ca.crl) loaded into OpenSSL as a second revocation check. */
  crlFile?: string
}

/**
 * Options for tls.createServer / https.createServer / server.setSecureContext. Throws
 * PL_ERR_TLS_FILE naming the file when a file is missing, holds no PEM, or the key does not
 * match the certificate, so a reload with a bad file keeps the old context.
 */
export function buildAgentTlsContextOptions(files: AgentTlsFiles): TlsOptions {
  const cert = readPem(files.cert, ['CERTIFICATE'])
  const key = readPem(files.key, ['PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY'])
  const ca = files.caFile === null ? null : readPem(files.caFile, ['CERTIFICATE'])
  const crl = files.crlFile === undefined || ca === null ? undefined : readPem(files.crlFile, ['X509 CRL'])
  const options: TlsOptions = {
    cert,
    key,
    ...(ca === null ? {} : { ca: [ca] }),
    ...(crl === undefined ? {} : { crl: [crl] }),
    // Ask for a certificate but let the handshake finish; checkClientCert() decides and the
    // upgrade handler answers 403 with the reason. Unverified peers never get past that check.
    requestCert: ca !== null,
    rejectUnauthorized: false, // lint-allow: relay-decides (checkClientCert after the handshake)
    minVersion: 'TLSv1.2',
    // No resumption: a session resumed after a revocation would skip the certificate check.
    // No tickets (TLS 1.2 and 1.3), and no server session cache is kept (Node uses an external
    // cache that only works with 'resumeSession' listeners, which the relay never adds).
    secureOptions: constants.SSL_OP_NO_TICKET,
  }
  try {
    createSecureContext(options)
  } catch (err) {
    const message = (err as Error).message
    const file = /key|mismatch/i.test(message) ? files.key : /crl/i.test(message) ? (files.crlFile ?? files.cert) : files.cert
    throw new PorchlightError('PL_ERR_TLS_FILE', [file, message], { cause: err })
  }
  return options
}

export type CertCheck =
  | { ok: true; name: string; serial: string; kind: 'agent' | 'visitor' }
  | { ok: false; code: ErrorCode; reason: string; serial?: string; detail?: string }

/** OpenSSL verification errors with their own reason; every other error means "not our CA". */
const VERIFY_REASONS: Record<string, string> = {
  CERT_HAS_EXPIRED: 'certificate expired',
  CERT_NOT_YET_VALID: 'certificate not yet valid',
  CERT_REVOKED: 'certificate revoked',
  INVALID_PURPOSE: 'certificate not valid for client authentication',
}
const NOT_OUR_CA = "certificate not issued by this relay's CA"

/**
 * Did the peer present a certificate that OpenSSL verified against the relay CA and that is not
 * revoked? For visitors (access.client_certs) and as the first half of checkClientCert.
 */
export function checkPeerCert(socket: TLSSocket, revoked: ReadonlySet<string>): CertCheck {
  const peer = socket.getPeerCertificate()
  if (peer === null || typeof peer !== 'object' || Object.keys(peer).length === 0) {
    return { ok: false, code: 'PL_ERR_AUTH_CERT_REQUIRED', reason: 'no client certificate' }
  }
  const serial = normalizeSerial(peer.serialNumber ?? '')
  if (!socket.authorized) {
    const detail = String(socket.authorizationError ?? 'UNKNOWN')
    return { ok: false, code: 'PL_ERR_AUTH_CERT_REJECTED', reason: VERIFY_REASONS[detail] ?? NOT_OUR_CA, serial, detail }
  }
  if (serial === '' || revoked.has(serial)) {
    return { ok: false, code: 'PL_ERR_AUTH_CERT_REJECTED', reason: 'certificate revoked', serial }
  }
  const cn = peer.subject?.CN
  // Several CN attributes arrive as an array; an identity must be exactly one name.
  if (typeof cn !== 'string' || cn === '') {
    return { ok: false, code: 'PL_ERR_AUTH_CERT_REJECTED', reason: 'certificate has no single common name', serial }
  }
  // OU "visitor" marks a visitor certificate; anything else (older certificates have no OU) is an agent's.
  const kind = peer.subject?.OU === 'visitor' ? 'visitor' : 'agent'
  return { ok: true, name: cn, serial, kind }
}

/** checkPeerCert plus: the certificate must have been issued to `agentName` (its CN). */
export function checkClientCert(socket: TLSSocket, agentName: string, revoked: ReadonlySet<string>): CertCheck {
  const result = checkPeerCert(socket, revoked)
  if (!result.ok) return result
  if (result.kind !== 'agent') {
    return { ok: false, code: 'PL_ERR_AUTH_CERT_REJECTED', reason: 'a visitor certificate cannot authenticate an agent', serial: result.serial }
  }
  if (result.name !== agentName) {
    return { ok: false, code: 'PL_ERR_AUTH_CERT_REJECTED', reason: `certificate belongs to agent ${result.name}`, serial: result.serial }
  }
  return result
}

/**
 * Polls pki/revoked.json (mtime, size, inode) and calls onChange with the full serial set: once as
 * soon as it has read the file, then whenever the set changes. A file that fails to parse keeps the
 * previous set (onError is told). Returns a stop function. The timer is unref'd.
 */
export function watchRevocations(
  dir: string,
  onChange: (serials: Set<string>) => void,
  intervalMs = 1000,
  onError: (err: unknown) => void = () => {},
): () => void {
  const file = pkiPath(dir, 'revoked')
  let lastStamp: string | null = null
  let lastKey: string | null = null
  let busy = false
  let stopped = false
  let failing = false

  async function tick(): Promise<void> {
    if (busy || stopped) return
    busy = true
    try {
      const stamp = await stat(file).then((s) => `${s.mtimeMs}:${s.size}:${s.ino}`, (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return 'missing'
        throw err
      })
      if (stamp === lastStamp) return
      const serials = loadRevokedSerials(dir)
      lastStamp = stamp
      // A rewrite that changes nothing (or a stat taken mid-write) is not a change.
      const key = [...serials].sort().join(',')
      // After a failed read, a good one is always reported: the caller clears its alarm.
      if ((key === lastKey && !failing) || stopped) return
      lastKey = key
      failing = false
      onChange(serials)
    } catch (err) {
      failing = true
      onError(err)
    } finally {
      busy = false
    }
  }

  void tick()
  const timer = setInterval(() => void tick(), intervalMs)
  timer.unref()
  return () => {
    stopped = true
    clearInterval(timer)
  }
}

/** The PEM blocks labelled `labels` in `file` (also for cluster.peer_tls); PL_ERR_TLS_FILE naming the file otherwise. */
export function readPem(file: string, labels: string[]): string {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new PorchlightError('PL_ERR_TLS_FILE', [file, (err as Error).message], { cause: err })
  }
  const blocks = splitPemBlocks(text).filter((b) => labels.includes(b.label))
  if (blocks.length === 0) throw new PorchlightError('PL_ERR_TLS_FILE', [file, `no ${labels[0]} PEM block`])
  return blocks.map((b) => b.pem).join('')
}
