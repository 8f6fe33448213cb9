/**
 * When to renew, when to retry and whether the hourly cap allows an order: pure functions, so the
 * rules are table-tested without a CA.
 */

/** First retry after a failed order; it doubles per consecutive failure up to RETRY_MAX_MS. */
export const RETRY_BASE_MS = 60_000
export const RETRY_MAX_MS = 6 * 60 * 60_000
/** The orders cap counts a rolling window of this length. */
export const ORDER_WINDOW_MS = 60 * 60_000

/**
 * When a certificate valid from `notBefore` to `notAfter` (ms) is renewed: `renewBeforeS` before
 * its end when set, else at two thirds of its lifetime; `jitter` in [0, 1) moves it earlier by up
 * to a twentieth of the lifetime (at most a day), so many names issued together do not renew
 * together. Never before notBefore.
 */
export function renewAt(notBefore: number, notAfter: number, renewBeforeS: number | null, jitter: number): number {
  const lifetime = Math.max(0, notAfter - notBefore)
  const base = renewBeforeS === null ? notBefore + (lifetime * 2) / 3 : notAfter - renewBeforeS * 1000
  const spread = Math.min(lifetime / 20, 86_400_000) * jitter
  return Math.max(notBefore, Math.round(base - spread))
}

/** Delay before the next order for a name after `failures` consecutive failed ones (1 or more). */
export function retryDelayMs(failures: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.max(0, Math.min(failures - 1, 20)))
}

/**
 * Given the start times of recent orders (ascending), whether a new one may start at `now`, and
 * if not, when. Drops entries older than the window from `times` in place.
 */
export function orderSlot(times: number[], now: number, maxPerHour: number): { ok: true } | { ok: false; at: number } {
  while (times.length > 0 && times[0]! <= now - ORDER_WINDOW_MS) times.shift()
  if (times.length < maxPerHour) return { ok: true }
  return { ok: false, at: times[0]! + ORDER_WINDOW_MS }
}
