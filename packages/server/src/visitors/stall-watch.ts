/**
 * Closes a visitor that stopped reading (SECURITY E3): a response whose socket stays full for
 * `limitMs` holds a mux window, a stream slot and the agent's origin request for nothing. Quiet
 * responses (SSE between events) are not stalls: only time spent blocked on a full socket counts.
 *
 * A fast download hits backpressure many times a second, so this keeps one timer per stall
 * period instead of one per `write() === false`: the timer re-checks and re-arms itself.
 */
export class StallWatch {
  private blockedSince: number | null = null
  private timer: NodeJS.Timeout | null = null
  private stopped = false

  constructor(
    private readonly limitMs: number,
    private readonly onStall: (blockedMs: number) => void,
  ) {}

  /** The socket refused more data (write returned false). */
  blocked(): void {
    if (this.stopped || this.blockedSince !== null) return
    this.blockedSince = Date.now()
    if (this.timer === null) this.arm(this.limitMs)
  }

  /** The socket drained: the visitor is reading. */
  drained(): void {
    this.blockedSince = null
  }

  /** The response ended or closed. */
  stop(): void {
    this.stopped = true
    this.blockedSince = null
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.check(), ms)
    // A stuck visitor alone must not keep a draining relay alive.
    this.timer.unref()
  }

  private check(): void {
    this.timer = null
    if (this.stopped || this.blockedSince === null) return
    const blockedMs = Date.now() - this.blockedSince
    if (blockedMs >= this.limitMs) {
      this.stop()
      this.onStall(blockedMs)
      return
    }
    this.arm(this.limitMs - blockedMs)
  }
}
