import { EventEmitter } from 'node:events'
import type { Redis } from 'ioredis'
import type { Logger } from '@porchlight/shared/log'
import { seal, unseal } from './keys.js'

/** How often a member writes its heartbeat and reads the others'. */
export const HEARTBEAT_MS = 1_000
/** A member whose heartbeat is older than this is gone (its key expires in Redis too). */
export const MEMBER_TTL_MS = 3_000
/** Hostnames one member lists as served by its own links (bounds the heartbeat's size). */
const MAX_LISTED_HOSTS = 10_000
const MAX_MEMBERS = 64
/** How long start() waits for Redis before the first heartbeat (then the relay starts without a view). */
const FIRST_CONNECT_WAIT_MS = 2_000
/** Heartbeats in a row that failed before the connection is dropped and made again. */
const RECONNECT_AFTER_FAILURES = 3

export interface Member {
  id: string
  /** Where agents dial it (cluster.advertise.agents). */
  agents: string
  /** Its listen.peer as others reach it (cluster.advertise.peer). */
  peer: string
  /** Hostnames it holds a live agent link for (where a request can be forwarded). */
  hosts: string[]
  /** When it wrote this heartbeat (its clock, epoch ms). */
  at: number
}

export interface MembershipDeps {
  redis: Redis
  sealKey: Buffer
  self: { id: string; agents: string; peer: string }
  /** Hostnames this relay serves over its own healthy links right now. */
  hosts: () => string[]
  log: Logger
  prefix: string
  now?: () => number
}

/**
 * Membership with heartbeats in Redis: every HEARTBEAT_MS this relay writes its sealed entry with
 * a TTL and reads everyone's. The view (last successful read) is what agents are told and where
 * requests are forwarded; Redis is never asked on a request's path. Events: 'members' (the set of
 * ids or their agent URLs changed).
 */
export class Membership extends EventEmitter {
  private view = new Map<string, Member>()
  private lastOk = 0
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  private readonly now: () => number
  private signature = ''
  private failures = 0

  constructor(private readonly deps: MembershipDeps) {
    super()
    this.now = deps.now ?? Date.now
  }

  /**
   * Waits (bounded) for the Redis connection, writes the first heartbeat and reads the members,
   * then keeps beating. Without the wait the first command would fail at once (no offline queue)
   * and a restarted relay would know no peers for a second.
   */
  async start(): Promise<void> {
    const { redis } = this.deps
    if (redis.status !== 'ready') {
      await new Promise<void>((resolve) => {
        const done = (): void => { clearTimeout(timer); redis.off('ready', done); resolve() }
        const timer = setTimeout(done, FIRST_CONNECT_WAIT_MS)
        redis.once('ready', done)
      })
    }
    await this.beat()
    this.timer = setInterval(() => { if (this.running === null) this.running = this.beat().finally(() => { this.running = null }) }, HEARTBEAT_MS)
    this.timer.unref()
  }

  /** Stops beating and removes this member's entry (best effort), so peers and agents move on at once. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await this.running
    try {
      await this.deps.redis.multi().del(this.memberKey(this.deps.self.id)).srem(this.setKey(), this.deps.self.id).exec()
    } catch { /* Redis away: the entry expires by itself */ }
  }

  /** Milliseconds since the last heartbeat that reached Redis (Infinity before the first). */
  get stalenessMs(): number {
    return this.lastOk === 0 ? Infinity : this.now() - this.lastOk
  }

  /** Every member in the last view, this one first. */
  members(): Member[] {
    const self = this.view.get(this.deps.self.id) ?? { ...this.deps.self, hosts: [], at: this.now() }
    return [self, ...[...this.view.values()].filter((m) => m.id !== self.id).sort((a, b) => a.id.localeCompare(b.id))]
  }

  /** Other members of the last view. */
  peers(): Member[] {
    return this.members().slice(1)
  }

  /** Another member whose last heartbeat lists a live link for `host`, or null. */
  peerServing(host: string): Member | null {
    const fresh = this.now() - MEMBER_TTL_MS
    for (const m of this.peers()) if (m.at >= fresh && m.hosts.includes(host)) return m
    return null
  }

  private async beat(): Promise<void> {
    const { redis, self, sealKey } = this.deps
    const entry: Member = { ...self, hosts: this.deps.hosts().slice(0, MAX_LISTED_HOSTS), at: this.now() }
    try {
      const ids = await redis.multi()
        .set(this.memberKey(self.id), seal(sealKey, JSON.stringify(entry)), 'PX', MEMBER_TTL_MS)
        .sadd(this.setKey(), self.id)
        .smembers(this.setKey())
        .exec()
      const listed = ((ids?.[2]?.[1] as string[] | undefined) ?? []).slice(0, MAX_MEMBERS)
      const values = listed.length === 0 ? [] : await redis.mget(listed.map((id) => this.memberKey(id)))
      const view = new Map<string, Member>()
      const gone: string[] = []
      listed.forEach((id, i) => {
        const member = this.open(values[i] ?? null)
        if (member && member.id === id) view.set(id, member)
        else if (values[i] === null) gone.push(id)
      })
      if (gone.length > 0) await redis.srem(this.setKey(), ...gone)
      this.view = view
      this.lastOk = this.now()
      const signature = [...view.values()].map((m) => `${m.id}=${m.agents}`).sort().join(' ')
      if (signature !== this.signature) {
        this.signature = signature
        this.deps.log.info({ members: [...view.keys()].sort() }, 'cluster members')
        this.emit('members', this.members())
      }
      this.failures = 0
    } catch {
      // connectRedis logs the problem; staleness grows until Redis answers again. A connection
      // whose commands keep timing out (a path that drops packets) is replaced, so the relay
      // recovers as soon as the network does instead of waiting for TCP to give up.
      if (++this.failures >= RECONNECT_AFTER_FAILURES) {
        this.failures = 0
        redis.disconnect(true)
      }
    }
  }

  /** A member entry from Redis, or null when it was not sealed with our key or is malformed. */
  private open(value: string | null): Member | null {
    if (value === null) return null
    const text = unseal(this.deps.sealKey, value)
    if (text === null) return null
    try {
      const m = JSON.parse(text) as Member
      if (typeof m.id !== 'string' || typeof m.agents !== 'string' || typeof m.peer !== 'string' || !Array.isArray(m.hosts) || typeof m.at !== 'number') return null
      return m
    } catch {
      return null
    }
  }

  private memberKey(id: string): string {
    return `${this.deps.prefix}member:${id}`
  }

  private setKey(): string {
    return `${this.deps.prefix}members`
  }
}
