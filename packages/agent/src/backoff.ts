/**
 * Reconnect delays: "full jitter" capped exponential backoff. The ceiling doubles per attempt
 * (base, 2×base, 4×base … up to the cap) and the delay is uniform in [floor, ceiling], so a fleet
 * of agents that lost the same relay does not come back in one thundering herd.
 */
export const BACKOFF_BASE_MS = 1_000
export const BACKOFF_MAX_MS = 30_000
/** Never retry in a tight loop even when random() returns ~0. */
export const BACKOFF_FLOOR_MS = 100

export interface BackoffOptions {
  baseMs?: number
  maxMs?: number
  floorMs?: number
  /** Uniform in [0, 1); injected by tests. */
  random?: () => number
}

/** Delay before reconnect attempt `attempt` (1-based). Pure. */
export function backoffDelayMs(attempt: number, options: BackoffOptions = {}): number {
  const maxMs = Math.max(1, options.maxMs ?? BACKOFF_MAX_MS)
  const baseMs = Math.min(Math.max(1, options.baseMs ?? BACKOFF_BASE_MS), maxMs)
  const floorMs = Math.min(options.floorMs ?? BACKOFF_FLOOR_MS, baseMs)
  const random = options.random ?? Math.random
  const exponent = Math.min(Math.max(0, Math.floor(attempt) - 1), 30) // 2^30 already exceeds any cap
  const ceilingMs = Math.min(maxMs, baseMs * 2 ** exponent)
  const r = Math.min(Math.max(random(), 0), 1)
  return Math.round(floorMs + r * (ceilingMs - floorMs))
}

/** The cap, honouring PORCHLIGHT_BACKOFF_MAX_MS (tests shorten it; invalid values are ignored). */
export function backoffMaxFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env['PORCHLIGHT_BACKOFF_MAX_MS']
  if (raw === undefined || !/^\d{1,9}$/.test(raw.trim())) return BACKOFF_MAX_MS
  const value = Number(raw)
  return value >= 1 ? value : BACKOFF_MAX_MS
}

/** Attempt counter around backoffDelayMs; reset() after a session proved stable. */
export class Backoff {
  private attemptCount = 0
  constructor(private readonly options: BackoffOptions = {}) {}

  /** Delay for the next attempt; increments the attempt counter. */
  next(): number {
    this.attemptCount += 1
    return backoffDelayMs(this.attemptCount, this.options)
  }

  reset(): void {
    this.attemptCount = 0
  }

  get attempt(): number {
    return this.attemptCount
  }
}
