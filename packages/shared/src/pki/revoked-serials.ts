import { readRevokedSync } from './store.js'

/**
 * The revoked serials, normalised (lowercase hex, no leading zeros) so they compare equal to
 * `normalizeSerial(tlsSocket.getPeerCertificate().serialNumber)`. A missing file is an empty set;
 * an unreadable or malformed one throws (fail closed). Synchronous: revoked.json is small and
 * read at startup and when the watcher sees it change.
 */
export function loadRevokedSerials(dir: string): Set<string> {
  const { revoked } = readRevokedSync(dir)
  return new Set(revoked.map((r) => r.serial))
}
