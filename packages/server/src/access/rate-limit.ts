/**
 * Fixed-window counters per key (e.g. "ip|host") in a bounded LRU table: one key's failures never
 * affect another key, and a flood of distinct keys evicts the least recently used entries instead
 * of growing memory (SECURITY C5: 1M spoofed keys stay within maxKeys).
 */
export interface RateLimiterOptions {
  /** Hits allowed per window; the hit after that is refused. */
  limit: number
  windowMs: number
  /** Most keys kept; the least recently used key is evicted beyond it. */
  maxKeys: number
  now?: () => number
}

export interface RateDecision {
  allowed: boolean
  /** Seconds until the key's window resets; 0 when allowed. */
  retryAfterS: number
}

interface Window {
  count: number
  resetAt: number
}

export class RateLimiter {
  private readonly table = new Map<string, Window>()
  private readonly limit: number
  private readonly windowMs: number
  private readonly maxKeys: number
  private readonly now: () => number

  constructor(opts: RateLimiterOptions) {
    if (!(opts.limit >= 1 && opts.windowMs > 0 && opts.maxKeys >= 1)) throw new RangeError('RateLimiter needs limit >= 1, windowMs > 0, maxKeys >= 1')
    this.limit = opts.limit
    this.windowMs = opts.windowMs
    this.maxKeys = opts.maxKeys
    this.now = opts.now ?? Date.now
  }

  /** Keys currently tracked (never above maxKeys). */
  get size(): number {
    return this.table.size
  }

  /** Counts one event for `key` and says whether it is within the limit. */
  hit(key: string): RateDecision {
    const now = this.now()
    const w = this.current(key, now) ?? { count: 0, resetAt: now + this.windowMs }
    w.count++
    this.touch(key, w)
    return this.decision(w, now)
  }

  /** Whether `key` is currently within the limit, without counting anything. */
  peek(key: string): RateDecision {
    const now = this.now()
    const w = this.current(key, now)
    if (!w) return { allowed: true, retryAfterS: 0 }
    // peek asks "may one more happen?", so a key at exactly the limit is already refused.
    return w.count >= this.limit ? { allowed: false, retryAfterS: retryAfter(w, now) } : { allowed: true, retryAfterS: 0 }
  }

  /** Takes back one hit of `key` (an attempt reserved by hit() that was never checked). */
  refund(key: string): void {
    const w = this.current(key, this.now())
    if (w && w.count > 0) w.count--
  }

  /** Forgets `key` (e.g. after a successful login). */
  reset(key: string): void {
    this.table.delete(key)
  }

  private current(key: string, now: number): Window | undefined {
    const w = this.table.get(key)
    if (w && w.resetAt <= now) {
      this.table.delete(key)
      return undefined
    }
    return w
  }

  // Map keeps insertion order: delete + set moves the key to the most-recent end.
  private touch(key: string, w: Window): void {
    this.table.delete(key)
    this.table.set(key, w)
    while (this.table.size > this.maxKeys) {
      const oldest = this.table.keys().next().value
      if (oldest === undefined) break
      this.table.delete(oldest)
    }
  }

  private decision(w: Window, now: number): RateDecision {
    return w.count <= this.limit ? { allowed: true, retryAfterS: 0 } : { allowed: false, retryAfterS: retryAfter(w, now) }
  }
}

function retryAfter(w: Window, now: number): number {
  return Math.max(1, Math.ceil((w.resetAt - now) / 1000))
}
