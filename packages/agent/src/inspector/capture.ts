import type { HeaderList } from '../tunnels/headers.js'

/** The inspector keeps this much of each request and response body; the rest is only counted. */
export const BODY_CAPTURE_BYTES = 64 * 1024

/** Fixed cost charged per entry for its object, strings and maps, on top of headers and bodies. */
export const ENTRY_OVERHEAD_BYTES = 512

export type ExchangeState = 'pending' | 'complete' | 'failed' | 'upgraded'

/** One list row: what the live list, the terminal view and `GET /api/requests` show. */
export interface ExchangeSummary {
  id: string
  tunnel: string
  host: string
  method: string
  path: string
  state: ExchangeState
  /** 0 until the origin's response head arrived (and for failures before it). */
  status: number
  startedAt: string
  durationMs: number | null
  requestBytes: number
  responseBytes: number
  /** The entry this one replays, when it is a replay. */
  replayOf: string | null
  error: { code: string; message: string } | null
}

export interface CapturedBody {
  /** The first BODY_CAPTURE_BYTES, base64. */
  base64: string
  /** Every byte seen, captured or not. */
  bytes: number
  truncated: boolean
}

/** `GET /api/requests/:id`: the summary plus headers and the first 64 KiB of both bodies. */
export interface ExchangeDetail extends ExchangeSummary {
  request: { headers: HeaderList; body: CapturedBody }
  response: { statusMessage: string; headers: HeaderList; body: CapturedBody } | null
}

export interface ExchangeStart {
  tunnel: string
  host: string
  method: string
  path: string
  headers: HeaderList
  replayOf?: string | null
}

/** The first bytes of a body, copied out of the stream's buffers (a slice would pin them). */
class BodyPrefix {
  private chunks: Buffer[] = []
  private kept = 0
  bytes = 0
  private joined: Buffer | null = null

  /** Bytes newly retained (for the store's accounting). */
  add(chunk: Buffer): number {
    this.bytes += chunk.length
    const room = BODY_CAPTURE_BYTES - this.kept
    if (room <= 0) return 0
    const take = Math.min(room, chunk.length)
    const copy = Buffer.alloc(take)
    chunk.copy(copy, 0, 0, take)
    this.chunks.push(copy)
    this.kept += take
    this.joined = null
    return take
  }

  get captured(): Buffer {
    if (this.joined === null) {
      this.joined = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.kept)
      this.chunks = [this.joined]
    }
    return this.joined
  }

  toJSON(): CapturedBody {
    return { base64: this.captured.toString('base64'), bytes: this.bytes, truncated: this.bytes > this.kept }
  }
}

/** One request as the inspector holds it while it runs and afterwards. */
export class CapturedExchange {
  readonly startedMs = Date.now()
  state: ExchangeState = 'pending'
  status = 0
  statusMessage = ''
  durationMs: number | null = null
  responseHeaders: HeaderList | null = null
  error: { code: string; message: string } | null = null
  readonly requestBody = new BodyPrefix()
  readonly responseBody = new BodyPrefix()
  /** Bytes charged to the store for this entry. */
  chargedBytes: number
  /** Evicted from the store: later chunks are no longer kept or charged. */
  evicted = false

  constructor(readonly id: string, readonly start: ExchangeStart) {
    this.chargedBytes = ENTRY_OVERHEAD_BYTES + headerBytes(start.headers) + start.path.length + start.host.length
  }

  summary(): ExchangeSummary {
    return {
      id: this.id,
      tunnel: this.start.tunnel,
      host: this.start.host,
      method: this.start.method,
      path: this.start.path,
      state: this.state,
      status: this.status,
      startedAt: new Date(this.startedMs).toISOString(),
      durationMs: this.durationMs,
      requestBytes: this.requestBody.bytes,
      responseBytes: this.responseBody.bytes,
      replayOf: this.start.replayOf ?? null,
      error: this.error,
    }
  }

  detail(): ExchangeDetail {
    return {
      ...this.summary(),
      request: { headers: this.start.headers, body: this.requestBody.toJSON() },
      response: this.responseHeaders === null ? null : { statusMessage: this.statusMessage, headers: this.responseHeaders, body: this.responseBody.toJSON() },
    }
  }
}

export interface CaptureLimits {
  /** Most entries kept; 0 keeps none. */
  requests: number
  /** Most bytes (headers, body prefixes, per-entry overhead) kept over all entries. */
  bytes: number
}

/** An entry started or changed; null: the store was cleared. */
export type CaptureListener = (summary: ExchangeSummary | null) => void

/**
 * The inspector's ring buffer: newest entries in, oldest out, bounded both by count and by
 * bytes (an entry's bytes grow while its bodies stream, so eviction runs on every growth too).
 * Memory only: nothing here is ever written to disk.
 */
export class CaptureStore {
  /** Oldest first; Map keeps insertion order. */
  private readonly entries = new Map<string, CapturedExchange>()
  private totalBytes = 0
  private nextId = 1
  private readonly listeners = new Set<CaptureListener>()

  constructor(readonly limits: CaptureLimits) {}

  get size(): number {
    return this.entries.size
  }

  get bytes(): number {
    return this.totalBytes
  }

  /** A new entry, already stored; null when the store keeps nothing. */
  begin(start: ExchangeStart): CapturedExchange | null {
    if (this.limits.requests === 0) return null
    const entry = new CapturedExchange(String(this.nextId++), start)
    this.entries.set(entry.id, entry)
    this.totalBytes += entry.chargedBytes
    this.evict()
    return entry
  }

  /** Adds retained bytes to an entry's charge (and evicts to stay in bounds). */
  charge(entry: CapturedExchange, bytes: number): void {
    if (entry.evicted || bytes === 0) return
    entry.chargedBytes += bytes
    this.totalBytes += bytes
    this.evict()
  }

  /** Tells subscribers (the page's event stream) an entry started or changed. */
  publish(entry: CapturedExchange): void {
    if (entry.evicted || this.listeners.size === 0) return
    const summary = entry.summary()
    for (const listener of this.listeners) listener(summary)
  }

  get(id: string): CapturedExchange | undefined {
    return this.entries.get(id)
  }

  /** Newest first. */
  list(): CapturedExchange[] {
    return [...this.entries.values()].reverse()
  }

  clear(): number {
    const n = this.entries.size
    for (const entry of this.entries.values()) entry.evicted = true
    this.entries.clear()
    this.totalBytes = 0
    for (const listener of this.listeners) listener(null)
    return n
  }

  subscribe(listener: CaptureListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  private evict(): void {
    while (this.entries.size > this.limits.requests || (this.totalBytes > this.limits.bytes && this.entries.size > 0)) {
      const oldest = this.entries.values().next().value as CapturedExchange
      this.entries.delete(oldest.id)
      oldest.evicted = true
      this.totalBytes -= oldest.chargedBytes
    }
  }
}

function headerBytes(headers: HeaderList): number {
  let n = 0
  for (const [name, value] of headers) n += name.length + value.length + 32
  return n
}

/** Charges response headers once they are known. */
export function responseHeaderBytes(headers: HeaderList, statusMessage: string): number {
  return headerBytes(headers) + statusMessage.length
}
