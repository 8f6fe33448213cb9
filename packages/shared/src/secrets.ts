import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/** Hex SHA-256, the form tokens are stored in (`token_sha256`). */
export function sha256Hex(value: string | Buffer): string {
  return createHash('sha256').update(value).digest('hex')
}

/**
 * Constant-time equality of two strings of any lengths. Both sides are hashed first so
 * timingSafeEqual always sees equal-length inputs (it throws otherwise) and the time taken
 * does not depend on where the inputs differ.
 */
export function safeEqual(a: string | Buffer, b: string | Buffer): boolean {
  const key = COMPARE_KEY
  const da = createHmac('sha256', key).update(a).digest()
  const db = createHmac('sha256', key).update(b).digest()
  return timingSafeEqual(da, db)
}

/** Compares a presented token with a stored hex SHA-256 in constant time. */
export function tokenMatchesHash(token: string, storedSha256Hex: string): boolean {
  return safeEqual(sha256Hex(token), storedSha256Hex.toLowerCase())
}

/** A fresh agent token: 32 random bytes, base64url (43 characters). */
export function newToken(): string {
  return randomBytes(32).toString('base64url')
}

const COMPARE_KEY = randomBytes(32)

/**
 * The token of `Authorization: Bearer TOKEN`, or null. One strict parse for the admin API and the
 * agents' endpoint: one space, then 1-512 visible ASCII characters and nothing else. (Trailing
 * spaces never get here: they are not part of an HTTP field value and Node's parser drops them.)
 */
export function parseBearer(header: string | undefined): string | null {
  const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(header ?? '')
  return m?.[1] ?? null
}
