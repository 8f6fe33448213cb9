import { LabelFolder, OTHER_LABEL } from './label-fold.js'

/** A fixed-capacity ring: push overwrites the oldest entry once full. */
export class Ring<T> {
  private readonly items: Array<T | undefined>
  private next = 0
  private count = 0

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ring capacity must be a positive integer, got ${capacity}`)
    this.items = new Array<T | undefined>(capacity)
  }

  push(item: T): void {
    this.items[this.next] = item
    this.next = (this.next + 1) % this.capacity
    if (this.count < this.capacity) this.count++
  }

  get size(): number {
    return this.count
  }

  /** Newest first, at most `limit`. */
  newest(limit = this.count): T[] {
    const out: T[] = []
    for (let i = 1; i <= Math.min(limit, this.count); i++) out.push(this.items[(this.next - i + this.capacity) % this.capacity] as T)
    return out
  }
}

/** One line of the access log, as the dashboard shows it (the URL already redacted). */
export interface AccessEntry {
  /** Epoch ms. */
  time: number
  agent: string | null
  host: string | null
  method: string
  url: string
  status: number
  bytesIn: number
  bytesOut: number
  ms: number
}

/** One host's last hour, oldest minute first. */
export interface HostTraffic {
  host: string
  requests: number[]
  errors: number[]
  bytes: number[]
}

const MINUTE_MS = 60_000

/** Per-minute slots for one host; a slot is valid only while its stamp is the minute it counts. */
class MinuteRing {
  readonly stamps: Float64Array
  readonly requests: Uint32Array
  readonly errors: Uint32Array
  readonly bytes: Float64Array
  lastMinute = -1

  constructor(minutes: number) {
    this.stamps = new Float64Array(minutes).fill(-1)
    this.requests = new Uint32Array(minutes)
    this.errors = new Uint32Array(minutes)
    this.bytes = new Float64Array(minutes)
  }

  add(minute: number, bytes: number, error: boolean): void {
    const i = minute % this.stamps.length
    if (this.stamps[i] !== minute) {
      this.stamps[i] = minute
      this.requests[i] = 0
      this.errors[i] = 0
      this.bytes[i] = 0
    }
    this.requests[i]!++
    if (error) this.errors[i]!++
    this.bytes[i]! += bytes
    this.lastMinute = minute
  }
}

/**
 * Requests, errors (5xx) and bytes per host per minute over the last `minutes` (the dashboard's
 * chart). Memory is fixed: at most `maxHosts` rings (hosts past it share one OTHER_LABEL ring),
 * and a host idle for a whole window gives its ring up to the next new host.
 */
export class TrafficRings {
  private readonly rings = new Map<string, MinuteRing>()
  private readonly folder: LabelFolder
  readonly minutes: number

  constructor(opts: { minutes?: number; maxHosts?: number } = {}) {
    this.minutes = opts.minutes ?? 60
    this.folder = new LabelFolder(opts.maxHosts ?? 200)
  }

  record(host: string, nowMs: number, bytes: number, error: boolean): void {
    const minute = Math.floor(nowMs / MINUTE_MS)
    let ring = this.rings.get(host)
    if (ring === undefined) {
      if (!this.folder.has(host) && this.folder.size >= this.folder.cap) this.evictIdle(minute)
      const label = this.folder.fold(host)
      ring = this.rings.get(label)
      if (ring === undefined) {
        ring = new MinuteRing(this.minutes)
        this.rings.set(label, ring)
      }
    }
    ring.add(minute, bytes, error)
  }

  /** Every host with traffic in the window; each array has `minutes` entries ending at nowMs's minute. */
  series(nowMs: number): HostTraffic[] {
    const current = Math.floor(nowMs / MINUTE_MS)
    const first = current - this.minutes + 1
    const out: HostTraffic[] = []
    for (const [host, ring] of this.rings) {
      if (ring.lastMinute < first) continue
      const entry: HostTraffic = { host, requests: [], errors: [], bytes: [] }
      for (let m = first; m <= current; m++) {
        const i = m % this.minutes
        const live = ring.stamps[i] === m
        entry.requests.push(live ? ring.requests[i]! : 0)
        entry.errors.push(live ? ring.errors[i]! : 0)
        entry.bytes.push(live ? ring.bytes[i]! : 0)
      }
      out.push(entry)
    }
    return out
  }

  /** Hosts holding a ring now (OTHER_LABEL included once used). */
  get hostCount(): number {
    return this.rings.size
  }

  /** Drops rings whose newest minute has left the window: they have nothing left to show. */
  private evictIdle(currentMinute: number): void {
    for (const [host, ring] of this.rings) {
      if (host === OTHER_LABEL) continue
      if (ring.lastMinute <= currentMinute - this.minutes) {
        this.rings.delete(host)
        this.folder.release(host)
      }
    }
  }
}

/** What the dashboard shows besides the live registry: the access log's tail and traffic per host. */
export class Activity {
  readonly accessLog: Ring<AccessEntry>
  readonly traffic: TrafficRings

  constructor(opts: { accessLogEntries?: number; minutes?: number; maxHosts?: number } = {}) {
    this.accessLog = new Ring(opts.accessLogEntries ?? 500)
    this.traffic = new TrafficRings({ ...(opts.minutes !== undefined ? { minutes: opts.minutes } : {}), ...(opts.maxHosts !== undefined ? { maxHosts: opts.maxHosts } : {}) })
  }

  /** One finished request (called once, where the access line is written). */
  request(entry: AccessEntry): void {
    this.accessLog.push(entry)
    if (entry.host !== null) this.traffic.record(entry.host, entry.time, entry.bytesIn + entry.bytesOut, entry.status >= 500)
  }
}
