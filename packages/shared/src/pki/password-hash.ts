import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'

/**
 * Password hashes for `access.basic.password_hash`: "scrypt:N:r:p:saltB64:hashB64". Made by
 * `porchlight hash-password` on the laptop and checked by the relay, so it lives in shared.
 * The relay receives hashes from agents, so parameters are bounded before scrypt runs: a hostile
 * N cannot make the relay allocate gigabytes.
 */
export const SCRYPT_DEFAULTS = { N: 1 << 15, r: 8, p: 1, saltBytes: 16, keyBytes: 32 } as const

const LIMITS = { minLogN: 10, maxLogN: 17, maxR: 16, maxP: 4, maxMemBytes: 128 * 1024 * 1024, minSaltBytes: 8, maxSaltBytes: 64, minKeyBytes: 16, maxKeyBytes: 64 }

export interface ParsedPasswordHash {
  N: number
  r: number
  p: number
  salt: Buffer
  hash: Buffer
}

/** scrypt on libuv's thread pool, so hashing never blocks the event loop. */
function scryptAsync(password: string, salt: Buffer, keyBytes: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keyBytes, opts, (err, key) => (err ? reject(err) : resolve(key)))
  })
}

function scryptOptions(N: number, r: number, p: number): ScryptOptions {
  // 128·N·r bytes is what scrypt needs; give OpenSSL headroom above it.
  return { N, r, p, maxmem: 2 * 128 * N * r + 1024 * 1024 }
}

export async function hashPassword(password: string): Promise<string> {
  const { N, r, p, saltBytes, keyBytes } = SCRYPT_DEFAULTS
  const salt = randomBytes(saltBytes)
  const hash = await scryptAsync(password, salt, keyBytes, scryptOptions(N, r, p))
  return `scrypt:${N}:${r}:${p}:${salt.toString('base64')}:${hash.toString('base64')}`
}

/** Parses and bounds-checks a hash string; null when malformed or outside the limits. */
export function parsePasswordHash(text: string): ParsedPasswordHash | null {
  if (text.length > 512) return null
  const parts = text.split(':')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return null
  const [, nText, rText, pText, saltText, hashText] = parts as [string, string, string, string, string, string]
  if (![nText, rText, pText].every((x) => /^[1-9][0-9]{0,9}$/.test(x))) return null
  const N = Number(nText)
  const r = Number(rText)
  const p = Number(pText)
  const logN = Math.log2(N)
  if (!Number.isInteger(logN) || logN < LIMITS.minLogN || logN > LIMITS.maxLogN) return null
  if (r > LIMITS.maxR || p > LIMITS.maxP || 128 * N * r > LIMITS.maxMemBytes) return null
  const salt = strictBase64(saltText)
  const hash = strictBase64(hashText)
  if (!salt || salt.length < LIMITS.minSaltBytes || salt.length > LIMITS.maxSaltBytes) return null
  if (!hash || hash.length < LIMITS.minKeyBytes || hash.length > LIMITS.maxKeyBytes) return null
  return { N, r, p, salt, hash }
}

export function isPasswordHash(text: string): boolean {
  return parsePasswordHash(text) !== null
}

/**
 * True when `password` matches. The comparison is constant-time; a malformed hash yields false
 * (config validation reports it earlier, so this path only sees hostile or corrupted input).
 */
export async function verifyPassword(password: string, passwordHash: string): Promise<boolean> {
  const parsed = parsePasswordHash(passwordHash)
  if (!parsed) return false
  const candidate = await scryptAsync(password, parsed.salt, parsed.hash.length, scryptOptions(parsed.N, parsed.r, parsed.p))
  return timingSafeEqual(candidate, parsed.hash)
}

/** Standard base64, padded or not (other scrypt tools omit the padding); anything else is null. */
function strictBase64(text: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return null
  const padded = text.includes('=')
  if ((padded && text.length % 4 !== 0) || (!padded && text.length % 4 === 1)) return null
  return Buffer.from(text, 'base64')
}
