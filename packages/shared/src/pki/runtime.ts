/**
 * The part of the PKI a running relay or agent needs: bundle parsing, revocation lookups and
 * password hashes. Nothing here loads node-forge (about 10 MB of RSS), which only the `ca` and
 * `cert` commands need; those import ./index.js.
 */
export { loadRevokedSerials } from './revoked-serials.js'
export { parseBundle, type ClientBundle } from './bundle.js'
export { normalizeSerial } from './serial.js'
export { PKI_FILES, pkiPath } from './store.js'
export { hashPassword, verifyPassword, isPasswordHash, type ParsedPasswordHash } from './password-hash.js'
export { splitPemBlocks, type PemBlock } from './pem.js'
