import { performance } from 'node:perf_hooks'
import type { Redis } from 'ioredis'
import type { Logger } from '@porchlight/shared/log'
import { hmac, hmacMatches } from './keys.js'

/** Who holds a lease: one process (instance) of one agent. */
export interface LeaseOwner {
  agent: string
  instance: string
}

export type LeaseClaim =
  | { ok: true; token: number }
  | { ok: false; code: 'PL_ERR_LEASE_HELD'; holder: string }
  | { ok: false; code: 'PL_ERR_CLUSTER_REDIS'; reason: string }

/** What this relay knows of one lease: its value in Redis and until when it may serve on it. */
interface Known {
  owner: string
  token: number
  value: string
  /** performance.now() past which this relay no longer serves on the lease without a renewal. */
  validUntil: number
  /**
   * performance.now() past which the lease cannot still be in Redis unless renewed since: its last
   * sighting plus the TTL. Until then a lower token is refused (fencing); after it, a lower token
   * means Redis lost its data, and what Redis holds now is the truth.
   */
  fenceUntil: number
}

const REDIS_DOWN_BACKOFF_MS = 1_000

/** {value, PTTL ms} or {'', -2} when there is no lease. */
const PEEK_LUA = `local v = redis.call('GET', KEYS[1])
if not v then return {'', -2} end
return {v, redis.call('PTTL', KEYS[1])}`
/** 1: renewed; 0: gone; else the value someone else holds. Compare-and-extend, atomically. */
const RENEW_LUA = `local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not v then return 0 end
return v`
/**
 * The next fencing token. A counter that starts over (a new Redis, or one that lost its data) starts
 * at Redis's clock in ms rather than 1, and never at or below ARGV[1], the largest token the asking
 * relay has seen: tokens issued after a wipe stay larger than those issued before it.
 */
const FENCE_LUA = `local n = redis.call('INCR', KEYS[1])
local counted = n
local floor = tonumber(ARGV[1])
if n == 1 then
  local now = redis.call('TIME')
  n = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end
if n <= floor then n = floor + 1 end
if n ~= counted then redis.call('SET', KEYS[1], string.format('%d', n)) end
return n`

interface LeaseCommands {
  porchlightLeasePeek(key: string): Promise<[string, number]>
  porchlightLeaseRenew(key: string, value: string, ttlMs: number): Promise<number | string>
  porchlightLeaseFence(key: string, floor: number): Promise<number>
}

export interface LeasesDeps {
  redis: Redis
  /** HMAC key tagging lease values, so a value written to Redis by anyone else is never believed. */
  tagKey: Buffer
  ttlMs: number
  log: Logger
  /** Key prefix, e.g. `porchlight:lease:`; a lease's key is the prefix and its resource. */
  prefix: string
  /** The leased resources this relay serves over live links, with their owners: what it renews. */
  held: () => Array<{ resource: string } & LeaseOwner>
  /** A lease this relay served on passed to someone else: take that owner's route or port down and tell it. */
  onLost: (resource: string, owner: LeaseOwner, holder: string | null) => void
}

/**
 * Fenced leases on what several agents' policies admit (issue 15), each a resource string:
 * `host:<hostname>` or `port:<number>`. Ownership is
 * `SET key "owner token tag" NX PX ttl` in Redis with `token` from a counter (FENCE_LUA), so a newer
 * owner always has a larger token, also after Redis lost its data. The owning agent's relays renew it
 * (compare-and-PEXPIRE) every ttl/3 while the agent holds a link to them. Serving never asks Redis: each relay keeps, per resource, the lease
 * it last saw and until when it may serve on it (the time the claim or renewal was SENT plus the
 * TTL, less a margin), so a frozen relay that resumes after the lease passed serves nothing on it.
 */
export class Leases {
  private readonly known = new Map<string, Known>()
  private readonly redis: Redis & LeaseCommands
  private timer: NodeJS.Timeout | null = null
  private renewing = false
  private warned = false
  private readonly marginMs: number
  /** After a Redis failure, claims fail at once for this long: a publish of many tunnels never waits a second on each. */
  private downUntil = 0
  /** The largest fencing token this relay has seen: the floor of the next one it takes (see FENCE_LUA). */
  private highest = 0

  constructor(private readonly deps: LeasesDeps) {
    this.redis = deps.redis as Redis & LeaseCommands
    this.redis.defineCommand('porchlightLeasePeek', { numberOfKeys: 1, lua: PEEK_LUA })
    this.redis.defineCommand('porchlightLeaseRenew', { numberOfKeys: 1, lua: RENEW_LUA })
    this.redis.defineCommand('porchlightLeaseFence', { numberOfKeys: 1, lua: FENCE_LUA })
    // Stop serving a little before Redis lets the key go: a new owner never overlaps the old one.
    this.marginMs = Math.min(1_000, Math.floor(deps.ttlMs / 10))
  }

  start(): void {
    this.timer = setInterval(() => void this.renewAll(), Math.max(250, Math.floor(this.deps.ttlMs / 3)))
    this.timer.unref()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
  }

  /**
   * Per request, in memory: may `owner`'s route or port for `resource` serve? Resources never claimed here (owned
   * by config) always may; a leased one only while this relay's view of the lease names `owner`
   * and has not run out.
   */
  serves(resource: string, owner: LeaseOwner): boolean {
    const k = this.known.get(resource)
    if (k === undefined) return true
    return k.owner === ownerId(owner) && performance.now() < k.validUntil
  }

  /** Whether this relay manages a lease for `resource` (it was claimed here). */
  leased(resource: string): boolean {
    return this.known.has(resource)
  }

  /** Takes the lease on `resource` for `owner`, or finds it already theirs; refused when someone else holds it. */
  async claim(resource: string, owner: LeaseOwner): Promise<LeaseClaim> {
    if (performance.now() < this.downUntil) return { ok: false, code: 'PL_ERR_CLUSTER_REDIS', reason: 'redis did not answer a moment ago' }
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        const sentAt = performance.now()
        const [value, pttl] = await this.redis.porchlightLeasePeek(this.key(resource))
        if (value !== '') {
          const lease = this.parse(resource, value)
          if (lease === null) return { ok: false, code: 'PL_ERR_LEASE_HELD', holder: 'an unverifiable value (not written by this cluster)' }
          if (lease.owner !== ownerId(owner)) {
            // Fencing: a route an older owner still has here stops serving at once (the holder's
            // own lease, already known here, is left as it is).
            const k = this.known.get(resource)
            if (k === undefined || k.owner !== lease.owner || k.token !== lease.token) this.adopt(resource, lease.owner, lease.token, value, 0)
            return { ok: false, code: 'PL_ERR_LEASE_HELD', holder: lease.owner.split('/')[0]! }
          }
          if (!this.adopt(resource, lease.owner, lease.token, value, sentAt + Math.max(0, pttl))) return { ok: false, code: 'PL_ERR_LEASE_HELD', holder: 'a newer lease' }
          return { ok: true, token: lease.token }
        }
        const token = await this.redis.porchlightLeaseFence(`${this.deps.prefix}fence`, this.highest)
        const fresh = this.value(resource, ownerId(owner), token)
        const setAt = performance.now()
        if (await this.redis.set(this.key(resource), fresh, 'PX', this.deps.ttlMs, 'NX') === 'OK') {
          // Above every token seen here, so never refused; checked all the same, as a claim must never be granted unserved.
          if (!this.adopt(resource, ownerId(owner), token, fresh, setAt + this.deps.ttlMs)) return { ok: false, code: 'PL_ERR_LEASE_HELD', holder: 'a newer lease' }
          this.deps.log.info({ lease: resource, agent: owner.agent, fence: token }, 'lease taken')
          return { ok: true, token }
        }
        // Someone set it between our look and our SET: look again (theirs, or ours from another relay).
      }
      return { ok: false, code: 'PL_ERR_LEASE_HELD', holder: 'another agent' }
    } catch (err) {
      this.downUntil = performance.now() + REDIS_DOWN_BACKOFF_MS
      return { ok: false, code: 'PL_ERR_CLUSTER_REDIS', reason: (err as Error).message }
    }
  }

  /**
   * Renews every lease this relay serves on. One that another owner holds now is lost (onLost);
   * one that ran out with nobody taking it is taken again for the same owner (a new token).
   * Redis unreachable: nothing changes, and the leases run out here after their TTL.
   */
  async renewAll(): Promise<void> {
    if (this.renewing) return
    this.renewing = true
    try {
      const held = new Map<string, LeaseOwner>()
      for (const h of this.deps.held()) if (this.known.has(h.resource)) held.set(h.resource, { agent: h.agent, instance: h.instance })
      // Forgotten only once it can fence nothing more (a lease seen here lives in Redis until fenceUntil at most).
      for (const [resource, k] of this.known) if (!held.has(resource) && performance.now() >= Math.max(k.validUntil, k.fenceUntil)) this.known.delete(resource)
      await Promise.all([...held].map(([resource, owner]) => this.renewOne(resource, owner)))
    } finally {
      this.renewing = false
    }
  }

  private async renewOne(resource: string, owner: LeaseOwner, retried = false): Promise<void> {
    const k = this.known.get(resource)
    if (k === undefined) return
    if (k.owner !== ownerId(owner)) return this.deps.onLost(resource, owner, k.owner.split('/')[0]!)
    const sentAt = performance.now()
    let answer: number | string
    try {
      answer = await this.redis.porchlightLeaseRenew(this.key(resource), k.value, this.deps.ttlMs)
      this.warned = false
    } catch (err) {
      if (!this.warned) this.deps.log.warn({ code: 'PL_ERR_CLUSTER_REDIS', err: { message: (err as Error).message } }, 'leases not renewed: contested hostnames and ports stop serving here when they run out')
      this.warned = true
      return
    }
    if (answer === 1) {
      // Only forward: a renewal never revives a lease this relay already saw pass to someone else.
      if (this.known.get(resource) === k) {
        k.validUntil = Math.max(k.validUntil, sentAt + this.deps.ttlMs - this.marginMs)
        k.fenceUntil = performance.now() + this.deps.ttlMs
      }
      return
    }
    if (answer === 0) {
      const again = await this.claim(resource, owner)
      if (again.ok || again.code === 'PL_ERR_CLUSTER_REDIS') return
      this.deps.log.warn({ lease: resource, agent: owner.agent, holder: again.holder }, 'lease ran out and another agent took it')
      return this.deps.onLost(resource, owner, again.holder)
    }
    const lease = this.parse(resource, String(answer))
    if (lease !== null && lease.owner === k.owner && !retried && this.adopt(resource, lease.owner, lease.token, String(answer), k.validUntil + this.marginMs)) {
      // The same owner under a newer token: another relay took the lease again for it after Redis
      // lost its data. It keeps serving on what this relay knew, and that value is renewed at once.
      return this.renewOne(resource, owner, true)
    }
    // Redis holds another owner's value: this owner stops here even if that value is not adopted (fenced).
    k.validUntil = 0
    if (lease !== null) this.adopt(resource, lease.owner, lease.token, String(answer), 0)
    this.deps.log.warn({ lease: resource, agent: owner.agent, holder: lease?.owner ?? null }, 'lease passed to another owner: the old owner serves nothing here')
    this.deps.onLost(resource, owner, lease?.owner.split('/')[0] ?? null)
  }

  /**
   * Records a lease seen in Redis; refuses (false) one older than a lease this relay already saw
   * for the resource while that one may still be in Redis: fencing, so a late answer never brings
   * back a previous owner. Past that, Redis lost its data (restart without persistence, FLUSHALL, a
   * new Redis, a failover to a replica behind): the lower token is what it holds, and is taken.
   */
  private adopt(resource: string, owner: string, token: number, value: string, expiresAt: number): boolean {
    const prev = this.known.get(resource)
    const now = performance.now()
    if (prev !== undefined && token < prev.token && now < prev.fenceUntil) return false
    this.known.set(resource, { owner, token, value, validUntil: expiresAt - this.marginMs, fenceUntil: now + this.deps.ttlMs })
    this.highest = Math.max(this.highest, token)
    return true
  }

  private key(resource: string): string {
    return `${this.deps.prefix}${resource}`
  }

  private value(resource: string, owner: string, token: number): string {
    return `${owner} ${token} ${hmac(this.deps.tagKey, `${resource} ${owner} ${token}`)}`
  }

  private parse(resource: string, value: string): { owner: string; token: number } | null {
    const [owner, tokenText, tag, extra] = value.split(' ')
    if (owner === undefined || tokenText === undefined || tag === undefined || extra !== undefined || !/^\d{1,15}$/.test(tokenText)) return null
    return hmacMatches(this.deps.tagKey, `${resource} ${owner} ${tokenText}`, tag) ? { owner, token: Number(tokenText) } : null
  }
}

function ownerId(o: LeaseOwner): string {
  return `${o.agent}/${o.instance}`
}
