import { SPEC_INITIAL_WINDOW_BYTES } from './frames.js'

/**
 * Receive-window accounting for one stream; pure (time comes in as arguments).
 *
 * Credit follows consumption, not arrival: the peer may have at most `windowBytes` bytes between
 * what our reader has consumed and what it may still send. A WINDOW_UPDATE returns credit once at
 * least half a window was consumed. When a whole window would be consumed within `growWithinMs`
 * (about two round trips), the window doubles up to `maxWindowBytes` and the session's spare
 * budget, so a fast stream over a long link is not capped at window/RTT.
 */
export class ReceiveWindow {
  /** Current target window; starts at the spec value plus whatever the SYN/ACK announces. */
  windowBytes: number
  /** Total credit the peer has been given (spec initial window plus every delta sent). */
  grantedBytes = SPEC_INITIAL_WINDOW_BYTES
  /** Total DATA bytes received. */
  receivedBytes = 0
  /** Total bytes that left the reader's buffer (monotonic). */
  consumedBytes = 0
  private lastUpdateMs: number
  private consumedAtUpdateBytes = 0

  constructor(windowBytes: number, nowMs: number) {
    this.windowBytes = Math.max(windowBytes, SPEC_INITIAL_WINDOW_BYTES)
    this.lastUpdateMs = nowMs
  }

  /** Delta to announce with SYN or ACK so the peer's view matches `windowBytes` (0 for the spec default). */
  takeOpeningDelta(): number {
    const delta = this.windowBytes - SPEC_INITIAL_WINDOW_BYTES
    this.grantedBytes += delta
    return delta
  }

  /** Accounts `n` arriving bytes; false when they exceed the credit given (a protocol violation). */
  receive(n: number): boolean {
    if (this.receivedBytes + n > this.grantedBytes) return false
    this.receivedBytes += n
    return true
  }

  /** The reader has taken everything up to `totalConsumedBytes` (monotonic; unshift cannot undo it). */
  consume(totalConsumedBytes: number): void {
    if (totalConsumedBytes > this.consumedBytes) this.consumedBytes = Math.min(totalConsumedBytes, this.receivedBytes)
  }

  /** Bytes received and not yet consumed by the reader. */
  get bufferedBytes(): number {
    return this.receivedBytes - this.consumedBytes
  }

  /** Credit that could be returned now. */
  get pendingCreditBytes(): number {
    return this.consumedBytes + this.windowBytes - this.grantedBytes
  }

  /**
   * Returns the WINDOW_UPDATE delta to send now, or 0 while less than half a window is consumed.
   * May grow `windowBytes` (by at most `sessionSpareBytes`); the caller tracks the session total.
   */
  takeUpdate(nowMs: number, growWithinMs: number, sessionSpareBytes: number, maxWindowBytes: number): number {
    if (this.pendingCreditBytes < this.windowBytes / 2) return 0
    this.windowBytes = nextWindowBytes({
      windowBytes: this.windowBytes,
      maxWindowBytes,
      consumedBytes: this.consumedBytes - this.consumedAtUpdateBytes,
      elapsedMs: nowMs - this.lastUpdateMs,
      growWithinMs,
      sessionSpareBytes,
    })
    const delta = this.consumedBytes + this.windowBytes - this.grantedBytes
    this.grantedBytes += delta
    this.lastUpdateMs = nowMs
    this.consumedAtUpdateBytes = this.consumedBytes
    return delta
  }
}

export interface WindowGrowthInput {
  windowBytes: number
  maxWindowBytes: number
  /** Bytes consumed since the previous update. */
  consumedBytes: number
  /** Time since the previous update. */
  elapsedMs: number
  /** Grow when a full window would be consumed faster than this. */
  growWithinMs: number
  /** Session budget left for growth (maxSessionBufferBytes minus all current windows). */
  sessionSpareBytes: number
}

/** Growth policy: double while the reader would drain a whole window within `growWithinMs`. */
export function nextWindowBytes(input: WindowGrowthInput): number {
  const { windowBytes, maxWindowBytes, consumedBytes, elapsedMs, growWithinMs, sessionSpareBytes } = input
  if (windowBytes >= maxWindowBytes || sessionSpareBytes <= 0 || consumedBytes <= 0) return windowBytes
  // rate = consumed / elapsed; a full window takes windowBytes / rate = windowBytes * elapsed / consumed.
  const fast = windowBytes * Math.max(elapsedMs, 0) < consumedBytes * growWithinMs
  if (!fast) return windowBytes
  return Math.min(windowBytes * 2, maxWindowBytes, windowBytes + sessionSpareBytes)
}

/** Below this the clock is too coarse and loopback RTTs too small to mean anything. */
export const MIN_GROW_WITHIN_MS = 20

/** About two round trips, never less than MIN_GROW_WITHIN_MS. */
export function growWithinMs(rttMs: number): number {
  return Math.max(2 * rttMs, MIN_GROW_WITHIN_MS)
}
