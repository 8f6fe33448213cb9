import { writeSync } from 'node:fs'
import pino, { type Logger, type LoggerOptions } from 'pino'
import { formatForCli, plError } from './errors.js'

export type { Logger }

/** Paths pino must never print: credentials, cookies, share-link tokens. */
export const REDACT_PATHS = [
  'token', '*.token', 'authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization',
  'cookie', '*.cookie', 'headers.cookie', 'req.headers.cookie', 'headers["set-cookie"]', 'password', '*.password',
  'password_hash', '*.password_hash', 'key', '*.key', 'share', '*.share',
]

export interface LoggerSettings {
  name: string
  level?: string
  /** Force pretty (true) or JSON (false); default: pretty only when stdout is a TTY. */
  pretty?: boolean
  /** Destination file descriptor or stream; default stdout. */
  destination?: pino.DestinationStream
}

/** The only place that constructs pino. Components take `log.child({ component })`. */
export function createLogger(settings: LoggerSettings): Logger {
  const level = settings.level ?? process.env['PORCHLIGHT_LOG_LEVEL'] ?? 'info'
  const options: LoggerOptions = {
    name: settings.name,
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: { err: pino.stdSerializers.err },
    base: { pid: process.pid },
  }
  const pretty = settings.pretty ?? (process.stdout.isTTY === true && process.env['PORCHLIGHT_LOG_FORMAT'] !== 'json')
  if (settings.destination) return pino(options, settings.destination)
  if (pretty) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' } } })
  }
  return pino(options, boundedStdout())
}

/**
 * Log lines held while stdout cannot take them (a stuck journald or pipe reader). Beyond this the
 * newest lines are dropped rather than kept without limit (SECURITY rule 6), and one line on
 * stderr says so.
 */
export const MAX_BUFFERED_LOG_BYTES = 16 * 1024 * 1024
/**
 * Under load, the lines logged within this window leave in one write. Each write is a thread-pool
 * round trip and a wake-up of the event loop when it completes: at a steady 2,000 requests a second,
 * one access line each, that was a tenth of the relay's CPU per request.
 */
export const LOG_BATCH_MS = 20
/** Under load: the last 100 ms saw this many lines (500 a second). Below it each line goes at once. */
const BUSY_LINES = 50
const RATE_WINDOW_MS = 100
/** A batch this big is written at once, without waiting for the window to close. */
const LOG_BATCH_BYTES = 64 * 1024

function boundedStdout(): pino.DestinationStream {
  const destination = pino.destination({ fd: 1, sync: false, maxLength: MAX_BUFFERED_LOG_BYTES })
  let warned = false
  destination.on('drop', () => {
    if (warned) return
    warned = true
    process.stderr.write(`${formatForCli(plError('PL_ERR_LOG_DROPPED', MAX_BUFFERED_LOG_BYTES))}\n`)
  })
  return new BatchedLines(destination, LOG_BATCH_MS, (data) => writeAllSync(1, data))
}

/** At exit, what still waits goes out synchronously (a full pipe is retried for up to a second). */
function writeAllSync(fd: number, data: string): void {
  let rest = Buffer.from(data)
  for (let tries = 0; rest.length > 0 && tries < 1000; tries++) {
    try {
      rest = rest.subarray(writeSync(fd, rest))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1)
    }
  }
}

/** What BatchedLines writes to: pino's SonicBoom destination. */
interface LineSink {
  write(data: string): boolean
  flush(cb?: (err?: Error) => void): void
  flushSync(): void
}

/**
 * Under load, collects the lines of one short window and hands them to the destination as one
 * string; a process logging less than 500 lines a second writes each line at once, as before. The
 * timer runs only while lines wait, so an idle process never wakes for it; `flush()` (pino's
 * logger.flush, at shutdown) and process exit write what waits at once.
 */
export class BatchedLines {
  private pending = ''
  private timer: NodeJS.Timeout | null = null
  private windowStart = 0
  private linesInWindow = 0
  private busy = false
  private readonly flushPending = (): void => {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    if (this.pending === '') return
    const batch = this.pending
    this.pending = ''
    this.sink.write(batch)
  }

  constructor(private readonly sink: LineSink, private readonly windowMs: number, private readonly writeSync: (data: string) => void) {
    flushedAtExit.add(new WeakRef(this))
    if (flushedAtExit.size === 1) process.once('exit', flushAllAtExit)
  }

  write(line: string): boolean {
    this.pending += line
    if (!this.underLoad() || this.pending.length >= LOG_BATCH_BYTES) this.flushPending()
    else if (this.timer === null) this.timer = setTimeout(this.flushPending, this.windowMs)
    return true
  }

  /** Counts this line; true when the last full rate window (just before this one) was busy. */
  private underLoad(): boolean {
    const now = Date.now()
    const elapsed = now - this.windowStart
    if (elapsed >= RATE_WINDOW_MS) {
      this.busy = elapsed < 2 * RATE_WINDOW_MS && this.linesInWindow >= BUSY_LINES
      this.windowStart = now
      this.linesInWindow = 0
    }
    this.linesInWindow++
    return this.busy
  }

  flush(cb?: (err?: Error) => void): void {
    this.flushPending()
    this.sink.flush(cb)
  }

  /** The destination's queue, then this window's lines, written before the call returns. */
  flushSync(): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    try {
      this.sink.flushSync()
    } catch { /* not open yet, or gone: the lines below still try */ }
    const batch = this.pending
    this.pending = ''
    if (batch !== '') this.writeSync(batch)
  }
}

/** Every BatchedLines of the process, written out by one 'exit' listener. */
const flushedAtExit = new Set<WeakRef<BatchedLines>>()

function flushAllAtExit(): void {
  for (const ref of flushedAtExit) ref.deref()?.flushSync()
}

/** Removes the query string from a URL for logging (share tokens travel there). */
export function redactUrl(url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : `${url.slice(0, q)}?[redacted]`
}
