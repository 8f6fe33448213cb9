/**
 * Session liveness: a PING every `intervalMs`, and a deadline that fires when nothing at all
 * arrived for `timeoutMs`. Any received bytes count, so a busy link never needs a pong in time.
 * Timers are unref()'d: an idle session never keeps the process alive on its own.
 */
export interface KeepAliveOptions {
  intervalMs: number
  timeoutMs: number
  /** Send a PING (the caller skips it while one is outstanding). */
  ping: () => void
  /** Date.now() of the last bytes received. */
  lastActivityMs: () => number
  onTimeout: () => void
}

export class KeepAlive {
  private readonly options: KeepAliveOptions
  private pingTimer: NodeJS.Timeout | null = null
  private deadline: NodeJS.Timeout | null = null

  constructor(options: KeepAliveOptions) {
    this.options = options
  }

  /** Starts pinging (one ping right away, to measure the RTT early); no-op when intervalMs is 0. */
  start(): void {
    const { intervalMs, timeoutMs, ping } = this.options
    if (intervalMs <= 0) return
    this.pingTimer = setInterval(ping, intervalMs)
    this.pingTimer.unref()
    ping()
    if (timeoutMs > 0) this.arm(timeoutMs)
  }

  stop(): void {
    if (this.pingTimer !== null) clearInterval(this.pingTimer)
    if (this.deadline !== null) clearTimeout(this.deadline)
    this.pingTimer = null
    this.deadline = null
  }

  private arm(delayMs: number): void {
    this.deadline = setTimeout(this.check, delayMs)
    this.deadline.unref()
  }

  // One timer re-armed for the remaining time, rather than a reset on every frame.
  private readonly check = (): void => {
    const { timeoutMs, lastActivityMs, onTimeout } = this.options
    const idleMs = Date.now() - lastActivityMs()
    if (idleMs >= timeoutMs) {
      this.stop()
      onTimeout()
      return
    }
    this.arm(timeoutMs - idleMs)
  }
}
