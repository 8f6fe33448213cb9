import { performance } from 'node:perf_hooks'
import { Flag, MAX_U32 } from './frames.js'

/** Answers to peer pings allowed per second; a flood beyond it is silently not answered. */
export const MAX_PING_REPLIES_PER_SECOND = 64

interface Outstanding {
  startedMs: number
  resolve: (rttMs: number) => void
  reject: (err: Error) => void
}

/** PING bookkeeping: opaque ids for our pings, RTT on reply, rate-limited answers to the peer's. */
export class PingTracker {
  private readonly send: (opaque: number, flags: number) => void
  private readonly pending = new Map<number, Outstanding>()
  private nextId = 1
  private windowStartMs = 0
  private repliesInWindow = 0

  constructor(send: (opaque: number, flags: number) => void) {
    this.send = send
  }

  get outstanding(): number {
    return this.pending.size
  }

  ping(): Promise<number> {
    const id = this.nextId
    this.nextId = this.nextId >= MAX_U32 ? 1 : this.nextId + 1
    return new Promise<number>((resolve, reject) => {
      this.pending.set(id, { startedMs: performance.now(), resolve, reject })
      this.send(id, Flag.SYN)
    })
  }

  /** The peer pinged us: echo its opaque value unless it is flooding. */
  onRequest(opaque: number, nowMs: number): void {
    if (nowMs - this.windowStartMs >= 1000) {
      this.windowStartMs = nowMs
      this.repliesInWindow = 0
    }
    if (this.repliesInWindow >= MAX_PING_REPLIES_PER_SECOND) return
    this.repliesInWindow++
    this.send(opaque, Flag.ACK)
  }

  /** A reply to one of our pings; returns the RTT, or undefined for an unknown id (ignored). */
  onReply(opaque: number): number | undefined {
    const p = this.pending.get(opaque)
    if (p === undefined) return undefined
    this.pending.delete(opaque)
    const rttMs = performance.now() - p.startedMs
    p.resolve(rttMs)
    return rttMs
  }

  /** Gives up on pings unanswered for `ageMs` (a lost or rate-limited reply must not stop the keepalive). */
  expire(ageMs: number, err: (ageMs: number) => Error): void {
    const now = performance.now()
    for (const [id, p] of this.pending) {
      if (now - p.startedMs < ageMs) continue
      this.pending.delete(id)
      p.reject(err(Math.round(now - p.startedMs)))
    }
  }

  rejectAll(err: Error): void {
    const all = [...this.pending.values()]
    this.pending.clear()
    for (const p of all) p.reject(err)
  }
}
