import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { seal, unseal } from '../cluster/keys.js'

/** How long a member's claim on ordering a name lasts without a refresh (a relay that died mid-order frees it). */
export const ORDER_LOCK_TTL_MS = 120_000
/** The order in flight refreshes its lock this often. */
export const ORDER_LOCK_REFRESH_MS = 30_000
/** Challenge answers vanish on their own if the orderer never cleans up (it crashed). */
export const CHALLENGE_TTL_MS = 10 * 60_000
/** A stored certificate stays this long past its expiry, then Redis drops it. */
const CERT_KEEP_AFTER_EXPIRY_MS = 24 * 60 * 60_000
/** A failed-order record outlives the longest retry wait, so the count keeps growing. */
const BACKOFF_KEEP_MS = 12 * 60 * 60_000

// Only the holder may extend or delete a lock: after it expired another member may hold it.
const EXTEND_IF_OURS = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
const DELETE_IF_OURS = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"

export interface OrderLock {
  /** Stops refreshing and deletes the lock if it is still ours (best effort: it expires anyway). */
  release(): Promise<void>
}

export interface SharedAlpnChallenge {
  cert: string
  key: string
}

export interface AcmeSharedStateDeps {
  redis: Redis
  /** The cluster's ACME sealing key (keys.acme). */
  key: Buffer
  /** `porchlight:acme:<directory id>:`: staging and production state never mix. */
  prefix: string
  /** This member's id, in lock values (who holds it, for an operator reading Redis). */
  member: string
}

/**
 * The ACME state a cluster shares in Redis: the account key, each name's certificate and key,
 * open challenge answers (so whichever relay the CA's validation reaches can answer it), a
 * per-name order lock and the per-name failure backoff. Every value is sealed with the cluster's
 * ACME key (AES-256-GCM) together with the Redis key it belongs under, so nothing is readable
 * without `secret_file` and a value moved to another key (another name's) does not open.
 * Every call rejects when Redis does not answer within its command timeout.
 */
export class AcmeSharedState {
  constructor(private readonly deps: AcmeSharedStateDeps) {}

  async readAccountKey(): Promise<Buffer | null> {
    const v = await this.get<{ pem: string }>('account')
    return v ? Buffer.from(v.pem) : null
  }

  /** Stores `pem` as the account key unless one is there; resolves with the one the cluster uses. */
  async offerAccountKey(pem: Buffer): Promise<Buffer> {
    const k = this.key('account')
    await this.deps.redis.set(k, this.sealFor(k, { pem: pem.toString() }), 'NX')
    const stored = await this.readAccountKey()
    if (!stored) throw new Error('the account key did not stay in redis')
    return stored
  }

  async readCertificate(name: string): Promise<{ cert: Buffer; key: Buffer } | null> {
    const v = await this.get<{ cert: string; key: string }>(`cert:${name}`)
    return v ? { cert: Buffer.from(v.cert), key: Buffer.from(v.key) } : null
  }

  async saveCertificate(name: string, cert: Buffer, key: Buffer, notAfter: number): Promise<void> {
    const k = this.key(`cert:${name}`)
    const ttl = Math.max(60_000, notAfter - Date.now() + CERT_KEEP_AFTER_EXPIRY_MS)
    await this.deps.redis.set(k, this.sealFor(k, { cert: cert.toString(), key: key.toString() }), 'PX', ttl)
  }

  /**
   * Claims the right to order `name` (SET NX PX): null when another member holds it. The claim is
   * refreshed while held, so an order that takes long keeps it; a member that dies frees it within
   * ORDER_LOCK_TTL_MS.
   */
  async lock(name: string): Promise<OrderLock | null> {
    const k = this.key(`lock:${name}`)
    const value = `${this.deps.member}:${randomBytes(12).toString('hex')}`
    const ok = await this.deps.redis.set(k, value, 'PX', ORDER_LOCK_TTL_MS, 'NX')
    if (ok !== 'OK') return null
    const refresh = setInterval(() => {
      this.deps.redis.eval(EXTEND_IF_OURS, 1, k, value, String(ORDER_LOCK_TTL_MS)).catch(() => { /* retried next interval; it expires otherwise */ })
    }, ORDER_LOCK_REFRESH_MS)
    refresh.unref()
    return {
      release: async () => {
        clearInterval(refresh)
        await this.deps.redis.eval(DELETE_IF_OURS, 1, k, value).catch(() => { /* expires by itself */ })
      },
    }
  }

  /** When the cluster's next order for `name` may start after failures, and how many failed in a row. */
  async readBackoff(name: string): Promise<{ count: number; retryAt: number } | null> {
    return this.get<{ count: number; retryAt: number }>(`backoff:${name}`)
  }

  async saveBackoff(name: string, backoff: { count: number; retryAt: number }): Promise<void> {
    const k = this.key(`backoff:${name}`)
    await this.deps.redis.set(k, this.sealFor(k, backoff), 'PX', BACKOFF_KEEP_MS)
  }

  async clearBackoff(name: string): Promise<void> {
    await this.deps.redis.del(this.key(`backoff:${name}`))
  }

  async putHttp(token: string, host: string, keyAuthorization: string): Promise<void> {
    const k = this.key(`http01:${token}`)
    await this.deps.redis.set(k, this.sealFor(k, { host, keyAuthorization }), 'PX', CHALLENGE_TTL_MS)
  }

  async getHttp(token: string): Promise<{ host: string; keyAuthorization: string } | null> {
    return this.get<{ host: string; keyAuthorization: string }>(`http01:${token}`)
  }

  async deleteHttp(token: string): Promise<void> {
    await this.deps.redis.del(this.key(`http01:${token}`))
  }

  async putAlpn(host: string, challenge: SharedAlpnChallenge): Promise<void> {
    const k = this.key(`alpn01:${host}`)
    await this.deps.redis.set(k, this.sealFor(k, challenge), 'PX', CHALLENGE_TTL_MS)
  }

  async getAlpn(host: string): Promise<SharedAlpnChallenge | null> {
    return this.get<SharedAlpnChallenge>(`alpn01:${host}`)
  }

  async deleteAlpn(host: string): Promise<void> {
    await this.deps.redis.del(this.key(`alpn01:${host}`))
  }

  private key(suffix: string): string {
    return `${this.deps.prefix}${suffix}`
  }

  private sealFor(redisKey: string, value: object): string {
    return seal(this.deps.key, JSON.stringify({ k: redisKey, v: value }))
  }

  /** The value under the key, or null when absent, not sealed with this cluster's key, or sealed for another key. */
  private async get<T>(suffix: string): Promise<T | null> {
    const k = this.key(suffix)
    const raw = await this.deps.redis.get(k)
    if (raw === null) return null
    const text = unseal(this.deps.key, raw)
    if (text === null) return null
    try {
      const parsed = JSON.parse(text) as { k?: unknown; v?: T }
      return parsed.k === k && parsed.v !== undefined ? parsed.v : null
    } catch {
      return null
    }
  }
}
