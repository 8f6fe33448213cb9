import type { Counter } from 'prom-client'
import type { Logger } from '@porchlight/shared/log'

/** How often the per-address refusal summary is logged. */
export const REFUSAL_LOG_INTERVAL_MS = 10_000
/** Addresses listed one by one in a summary; the rest are folded into one "others" count. */
const MAX_ADDRESSES_PER_SUMMARY = 100

interface Tally {
  answered: number
  dropped: number
}

/**
 * Connections refused by a limit: each is counted in `/metrics` at once, and the log gets one
 * summary line per address per interval (not one per connection, which a flood would turn into a
 * flood of log lines).
 */
export class RefusalWatch {
  private readonly pending = new Map<string, Tally>()
  private others = 0
  private timer: NodeJS.Timeout | null = null

  constructor(
    private readonly log: Logger,
    private readonly counter: Counter<'limit' | 'listener' | 'answered'>,
    private readonly intervalMs = REFUSAL_LOG_INTERVAL_MS,
    /** Also told of each refusal (the relay-wide `porchlight_limit_refusals_total`). */
    private readonly onRefused: () => void = () => undefined,
  ) {}

  /** One connection over `max_connections_per_ip` on `listener`; answered: it gets a 503. */
  refused(listener: string, ip: string, answered: boolean): void {
    this.counter.inc({ limit: 'max_connections_per_ip', listener, answered: String(answered) })
    this.onRefused()
    const key = `${listener}|${ip}`
    let tally = this.pending.get(key)
    if (tally === undefined) {
      if (this.pending.size >= MAX_ADDRESSES_PER_SUMMARY) {
        this.others++
        this.arm()
        return
      }
      tally = { answered: 0, dropped: 0 }
      this.pending.set(key, tally)
    }
    if (answered) tally.answered++
    else tally.dropped++
    this.arm()
  }

  /** Writes the summary now (also on each interval). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    for (const [key, tally] of this.pending) {
      const [listener, ip] = key.split('|', 2)
      this.log.warn({ code: 'PL_ERR_HTTP_TOO_MANY_CONNECTIONS', limit: 'max_connections_per_ip', listener, ip, answered: tally.answered, dropped: tally.dropped, intervalMs: this.intervalMs }, 'connections refused: over the per-address limit')
    }
    if (this.others > 0) this.log.warn({ code: 'PL_ERR_HTTP_TOO_MANY_CONNECTIONS', limit: 'max_connections_per_ip', others: this.others }, 'connections refused from further addresses')
    this.pending.clear()
    this.others = 0
  }

  stop(): void {
    this.flush()
  }

  private arm(): void {
    if (this.timer !== null) return
    this.timer = setTimeout(() => this.flush(), this.intervalMs)
    this.timer.unref()
  }
}
