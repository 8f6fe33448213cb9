import { createHmac, randomBytes } from 'node:crypto'
import { PorchlightError } from '@porchlight/shared/errors'
import { hashPassword, isPasswordHash, verifyPassword } from '@porchlight/shared/pki/runtime'
import { safeEqual } from '@porchlight/shared/secrets'

/**
 * HTTP Basic authentication for `access.basic`. Hash format and scrypt live in
 * @porchlight/shared/pki/runtime (the agent's `hash-password` makes them); this file parses the header and
 * checks credentials so that a wrong user and a wrong password cost the same time.
 */
export { hashPassword, isPasswordHash, verifyPassword }

export interface BasicCredentials {
  user: string
  password: string
}

/** Longest Authorization value we decode; real ones are far shorter. */
const MAX_HEADER_CHARS = 4096

/**
 * Parses `Authorization: Basic base64(user:password)`. Anything malformed (other scheme, bad
 * base64, no colon, repeated header, oversized, control characters) is null; never throws.
 */
export function parseBasicAuth(header: string | readonly string[] | undefined): BasicCredentials | null {
  if (typeof header !== 'string' || header.length > MAX_HEADER_CHARS) return null
  const match = /^Basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(header)
  if (!match) return null
  const b64 = match[1] ?? ''
  if (b64.length % 4 !== 0) return null
  const decoded = Buffer.from(b64, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon === -1) return null
  // Control characters (incl. the U+FFFD that replaces invalid UTF-8) never appear in real credentials.
  if (/[\u0000-\u001f\u007f\ufffd]/.test(decoded)) return null
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

/**
 * Checks presented credentials against `{user, password_hash}`. The user comparison and the
 * scrypt run always both happen, so response time does not reveal which one was wrong. Throws
 * PL_ERR_ACCESS_RATE_LIMITED when too many checks are already waiting.
 */
export async function checkBasicCredentials(
  creds: BasicCredentials,
  expected: { user: string; password_hash: string },
  cache: PasswordCache = defaultCache,
): Promise<boolean> {
  return cache.verify(creds, expected)
}

/**
 * Runs password checks for the relay. Remembers recent successes: browsers resend Basic
 * credentials on every request, and a page with 50 assets would otherwise cost 50 scrypt runs
 * (~100 ms each). Keys are HMACs of hash, user and password with a per-process key, so no
 * password is held; only full successes (right user AND right password) are cached, so a right
 * password under a wrong user name still costs a scrypt run; the table is a bounded LRU. Also bounds scrypt concurrency: scrypt runs on libuv's
 * small thread pool, which DNS lookups and file I/O share, so a guessing flood from many addresses
 * must queue (and beyond the queue get PL_ERR_ACCESS_RATE_LIMITED) instead of starving them.
 */
export class PasswordCache {
  private readonly entries = new Map<string, number>()
  private readonly key = randomBytes(32)
  private readonly maxEntries: number
  private readonly ttlMs: number
  private readonly now: () => number
  private readonly maxConcurrent: number
  private readonly maxQueued: number
  private running = 0
  private readonly queue: Array<() => void> = []

  private readonly check: (password: string, passwordHash: string) => Promise<boolean>

  constructor(opts: {
    maxEntries?: number
    ttlMs?: number
    now?: () => number
    maxConcurrent?: number
    maxQueued?: number
    /** The slow check being cached; tests substitute a counting one. */
    verify?: (password: string, passwordHash: string) => Promise<boolean>
  } = {}) {
    this.check = opts.verify ?? verifyPassword
    this.maxEntries = opts.maxEntries ?? 1024
    this.ttlMs = opts.ttlMs ?? 5 * 60_000
    this.now = opts.now ?? Date.now
    this.maxConcurrent = opts.maxConcurrent ?? 2
    this.maxQueued = opts.maxQueued ?? 64
  }

  get size(): number {
    return this.entries.size
  }

  async verify(creds: BasicCredentials, expected: { user: string; password_hash: string }): Promise<boolean> {
    const id = createHmac('sha256', this.key)
      .update(expected.password_hash).update('\0')
      .update(creds.user).update('\0')
      .update(creds.password)
      .digest('base64')
    const expires = this.entries.get(id)
    if (expires !== undefined) {
      this.entries.delete(id)
      if (expires > this.now()) {
        this.entries.set(id, expires)
        return true
      }
    }
    const userOk = safeEqual(creds.user, expected.user)
    const passwordOk = await this.limited(() => this.check(creds.password, expected.password_hash))
    const ok = userOk && passwordOk
    if (ok) {
      this.entries.set(id, this.now() + this.ttlMs)
      while (this.entries.size > this.maxEntries) {
        const oldest = this.entries.keys().next().value
        if (oldest === undefined) break
        this.entries.delete(oldest)
      }
    }
    return ok
  }

  // A finishing check hands its slot straight to the next waiter, so `running` never overshoots.
  private async limited<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running < this.maxConcurrent) {
      this.running++
    } else {
      if (this.queue.length >= this.maxQueued) throw new PorchlightError('PL_ERR_ACCESS_RATE_LIMITED')
      await new Promise<void>((resolve) => this.queue.push(resolve))
    }
    try {
      return await fn()
    } finally {
      const next = this.queue.shift()
      if (next) next()
      else this.running--
    }
  }
}

const defaultCache = new PasswordCache()

/** The challenge sent with every Basic 401. */
export const BASIC_CHALLENGE = 'Basic realm="porchlight"'
