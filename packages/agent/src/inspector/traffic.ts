import type { HeaderList } from '../tunnels/headers.js'
import { CaptureStore, responseHeaderBytes, type CapturedExchange, type ExchangeStart } from './capture.js'

/**
 * What tunnels/http.ts reports about one exchange. The agent passes no hook at all when nobody
 * watches (inspector off and no terminal view), so a quiet agent pays nothing per request.
 */
export interface TrafficHook {
  begin(start: ExchangeStart): ExchangeProbe
}

export interface ExchangeProbe {
  requestBody(chunk: Buffer): void
  response(status: number, statusMessage: string, headers: HeaderList): void
  responseBody(chunk: Buffer): void
  /** The exchange ended; `error` when it failed (before or after the response head). */
  end(error?: { code: string; message: string }): void
}

/** Per-tunnel counters for `porchlight status` and the terminal view. */
export interface TunnelTraffic {
  requests: number
  /** Requests in flight. */
  open: number
  byStatus: { '1xx': number; '2xx': number; '3xx': number; '4xx': number; '5xx': number }
  /** Requests that ended without a response from the local server (unreachable, reset). */
  errors: number
  /** Request body bytes from visitors. */
  bytesIn: number
  /** Response body bytes to visitors. */
  bytesOut: number
}

/** One finished (or failed) request, for the terminal view's list. */
export interface RequestLine {
  tunnel: string
  method: string
  path: string
  status: number
  ms: number
  error: string | null
}

export type RequestLineListener = (line: RequestLine) => void

/**
 * The agent's traffic hook: counts every exchange per tunnel, tells the terminal view about each
 * finished one, and, when the inspector records, fills its CaptureStore.
 */
export class TrafficMonitor implements TrafficHook {
  private readonly counters = new Map<string, TunnelTraffic>()
  private readonly lineListeners = new Set<RequestLineListener>()

  /** Replaced when the config's `inspect_capture` changes (the history goes with it). */
  store: CaptureStore | null

  constructor(store: CaptureStore | null) {
    this.store = store
  }

  begin(start: ExchangeStart): ExchangeProbe {
    const counters = this.countersOf(start.tunnel)
    counters.requests++
    counters.open++
    const store = this.store
    const entry = store?.begin(start) ?? null
    if (entry !== null) store!.publish(entry)
    return new Probe(this, store, counters, start, entry, false)
  }

  /** A replay from the inspector: recorded like a request, but not counted as visitor traffic. */
  beginReplay(start: ExchangeStart): { probe: ExchangeProbe; entry: CapturedExchange | null } {
    const store = this.store
    const entry = store?.begin(start) ?? null
    if (entry !== null) store!.publish(entry)
    return { probe: new Probe(this, store, emptyTraffic(), start, entry, true), entry }
  }

  /** A copy of the counters, by tunnel id. */
  traffic(id: string): TunnelTraffic {
    const c = this.counters.get(id)
    return c === undefined ? emptyTraffic() : { ...c, byStatus: { ...c.byStatus } }
  }

  onLine(listener: RequestLineListener): () => void {
    this.lineListeners.add(listener)
    return () => this.lineListeners.delete(listener)
  }

  /** @internal from Probe */
  finished(line: RequestLine): void {
    for (const listener of this.lineListeners) listener(line)
  }

  private countersOf(id: string): TunnelTraffic {
    let c = this.counters.get(id)
    if (c === undefined) {
      c = emptyTraffic()
      this.counters.set(id, c)
    }
    return c
  }
}

class Probe implements ExchangeProbe {
  private readonly startedMs = Date.now()
  private status = 0
  private done = false

  constructor(
    private readonly monitor: TrafficMonitor,
    private readonly store: CaptureStore | null,
    private readonly counters: TunnelTraffic,
    private readonly start: ExchangeStart,
    private readonly entry: CapturedExchange | null,
    private readonly quiet: boolean,
  ) {}

  requestBody(chunk: Buffer): void {
    this.counters.bytesIn += chunk.length
    const entry = this.entry
    if (entry !== null && !entry.evicted) this.store!.charge(entry, entry.requestBody.add(chunk))
  }

  response(status: number, statusMessage: string, headers: HeaderList): void {
    this.status = status
    const entry = this.entry
    if (entry === null || entry.evicted) return
    entry.status = status
    entry.statusMessage = statusMessage
    entry.responseHeaders = headers
    this.store!.charge(entry, responseHeaderBytes(headers, statusMessage))
  }

  responseBody(chunk: Buffer): void {
    this.counters.bytesOut += chunk.length
    const entry = this.entry
    if (entry !== null && !entry.evicted) this.store!.charge(entry, entry.responseBody.add(chunk))
  }

  end(error?: { code: string; message: string }): void {
    if (this.done) return
    this.done = true
    const ms = Date.now() - this.startedMs
    this.counters.open--
    if (error !== undefined && this.status === 0) this.counters.errors++
    else if (this.status >= 100 && this.status < 600) this.counters.byStatus[`${Math.floor(this.status / 100)}xx` as keyof TunnelTraffic['byStatus']]++
    const entry = this.entry
    if (entry !== null) {
      entry.durationMs = ms
      entry.state = error !== undefined ? 'failed' : this.status === 101 ? 'upgraded' : 'complete'
      entry.error = error ?? null
      this.store!.publish(entry)
    }
    if (!this.quiet) this.monitor.finished({ tunnel: this.start.tunnel, method: this.start.method, path: this.start.path, status: this.status, ms, error: error?.code ?? null })
  }
}

function emptyTraffic(): TunnelTraffic {
  return { requests: 0, open: 0, byStatus: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }, errors: 0, bytesIn: 0, bytesOut: 0 }
}
