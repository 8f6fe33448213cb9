/**
 * The relay's own PKI: a CA, client certificates for agents, revocation, and the agent-side
 * bundle parser. node-forge builds structures only; OpenSSL (Node's crypto/tls) signs and
 * verifies. Test-only helpers live in ./testing.ts and are deliberately not exported here.
 */
export { initCa, type InitCaOptions, type InitCaResult } from './ca.js'
export { issueClientCert, listCerts, isValidCertName, CERT_NAME_PATTERN, type IssueClientCertOptions, type IssueClientCertResult, type CertListing, type ClientCertKind } from './issue.js'
export { revokeCert, readCrl, type RevokeCertOptions } from './revocation.js'
export { loadRevokedSerials } from './revoked-serials.js'
export { parseBundle, type ClientBundle } from './bundle.js'
export { normalizeSerial, randomSerialHex } from './serial.js'
export { PKI_FILES, pkiPath, loadCa, type IssuedRecord, type RevokedRecord } from './store.js'
export { hashPassword, verifyPassword, isPasswordHash, parsePasswordHash, SCRYPT_DEFAULTS, type ParsedPasswordHash } from './password-hash.js'
export { splitPemBlocks, type PemBlock } from './pem.js'
