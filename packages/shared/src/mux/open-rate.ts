/**
 * Counts the streams a peer opens per one-second window (SECURITY.md E2, "rapid reset": a peer
 * that opens and resets streams as fast as it can). Fixed windows are enough here: the cap only
 * has to keep a flood from costing more than a bounded amount of work per second.
 */
export class OpenRateLimit {
  private windowStartMs = Number.NEGATIVE_INFINITY
  private opened = 0
  /** Opens refused since the session began. */
  refused = 0
  /** Opens refused in the current window (1 on the first refusal: the moment to log once). */
  refusedInWindow = 0

  /** `perSecond` 0 means unlimited. */
  constructor(private readonly perSecond: number) {}

  /** Records one open at `nowMs`; false when it is over the cap (the caller refuses it). */
  allow(nowMs: number): boolean {
    if (this.perSecond <= 0) return true
    if (nowMs - this.windowStartMs >= 1_000) {
      this.windowStartMs = nowMs
      this.opened = 0
      this.refusedInWindow = 0
    }
    this.opened++
    if (this.opened <= this.perSecond) return true
    this.refused++
    this.refusedInWindow++
    return false
  }
}
