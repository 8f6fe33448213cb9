import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { PorchlightError } from '@porchlight/shared/errors'

/**
 * Keys derived from the cluster's shared secret file (HKDF-SHA256, one label per use), so one
 * file serves peer authentication, sealing what Redis stores and signing share links, and a key
 * leaking from one use says nothing about the others.
 */
export interface ClusterKeys {
  /** HMAC key for requests between relays. */
  peer: Buffer
  /** AES-256-GCM key for values kept in Redis (membership, revocation events). */
  seal: Buffer
  /** Share-link signing key: a link minted by one member verifies on every member. */
  links: Buffer
  /** AES-256-GCM key for ACME state in Redis (account key, certificates and their keys, challenges). */
  acme: Buffer
  /** HMAC key for failure-limit keys in Redis (no address or user name is stored there). */
  limits: Buffer
  /** HMAC key tagging lease values (owner and fencing token) in Redis. */
  leases: Buffer
}

export function loadClusterKeys(file: string): ClusterKeys {
  let secret: Buffer
  try {
    secret = Buffer.from(readFileSync(file, 'utf8').trim(), 'utf8')
  } catch (err) {
    throw new PorchlightError('PL_ERR_CONFIG_SECRET', [file, (err as Error).message], { cause: err })
  }
  const derive = (label: string): Buffer => Buffer.from(hkdfSync('sha256', secret, 'porchlight-cluster', label, 32))
  return { peer: derive('peer-hmac-v1'), seal: derive('redis-seal-v1'), links: derive('share-links-v1'), acme: derive('acme-seal-v1'), limits: derive('limit-keys-v1'), leases: derive('lease-tags-v1') }
}

/** Encrypts and authenticates `text` (AES-256-GCM, random nonce): base64url of nonce|tag|ciphertext. */
export function seal(key: Buffer, text: string): string {
  const nonce = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, nonce)
  const body = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()])
  return Buffer.concat([nonce, cipher.getAuthTag(), body]).toString('base64url')
}

/** The text sealed with `key`, or null when it was not (forged, corrupted, another cluster's). */
export function unseal(key: Buffer, sealed: string): string | null {
  const raw = Buffer.from(sealed, 'base64url')
  if (raw.length < 28) return null
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12))
    decipher.setAuthTag(raw.subarray(12, 28))
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')
  } catch {
    return null
  }
}

export function hmac(key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text).digest('base64url')
}

export function hmacMatches(key: Buffer, text: string, presented: string): boolean {
  const expected = Buffer.from(hmac(key, text))
  const got = Buffer.from(presented)
  return got.length === expected.length && timingSafeEqual(got, expected)
}
