import type { Agent, AgentStatus } from './agent.js'
import type { RequestLine } from './inspector/traffic.js'
import { AGENT_VERSION } from './version.js'

/** Requests listed at the bottom of the screen. */
export const VIEW_REQUEST_LINES = 10
/** Log lines (warnings and errors) kept for the screen. */
const VIEW_LOG_LINES = 3
/** Redraws are coalesced to at most one per this interval; a timer also redraws (link state, reconnect countdown). */
const FRAME_MS = 100
const TICK_MS = 1_000

interface LogEntry {
  level?: number
  msg?: string
  err?: { message?: string }
}

/** pino lines that reach the screen: warnings and errors, newest last. */
export class LogTail {
  readonly lines: string[] = []
  onChange: (() => void) | null = null

  /** pino destination: one JSON line per call. */
  write(chunk: string): boolean {
    for (const line of chunk.split('\n')) {
      if (line === '') continue
      let entry: LogEntry | null
      try {
        entry = JSON.parse(line) as LogEntry | null
      } catch {
        continue
      }
      if (entry === null || (entry.level ?? 0) < 40) continue
      const text = `${(entry.level ?? 0) >= 50 ? 'error' : 'warn '} ${entry.msg ?? ''}${entry.err?.message !== undefined ? `: ${entry.err.message}` : ''}`
      this.lines.push(text)
      if (this.lines.length > VIEW_LOG_LINES) this.lines.shift()
    }
    this.onChange?.()
    return true
  }
}

export interface ScreenOutput {
  write(text: string): boolean
  columns?: number
  rows?: number
}

/**
 * The live screen of `porchlight http` and `porchlight up` on a terminal (in the manner of
 * ngrok's): link state, each public URL, the inspector URL, counts, and the last requests as they
 * finish. It owns the terminal while it runs (alternate screen, cursor hidden) and gives it back
 * on stop(). Only used when stdout is a terminal; otherwise the plain `Forwarding …` lines are
 * printed as before.
 */
export class TerminalView {
  private readonly requests: RequestLine[] = []
  private readonly notes: string[] = []
  private timer: NodeJS.Timeout | null = null
  private frame: NodeJS.Timeout | null = null
  private unsubscribe: (() => void) | null = null
  private running = false

  constructor(
    private readonly out: ScreenOutput,
    private readonly agent: Agent,
    private readonly tail: LogTail | null,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    if (this.running) return
    this.running = true
    this.out.write('\x1b[?1049h\x1b[?25l')
    this.unsubscribe = this.agent.traffic.onLine((line) => {
      this.requests.unshift(line)
      if (this.requests.length > VIEW_REQUEST_LINES) this.requests.pop()
      this.schedule()
    })
    for (const event of ['tunnel', 'forward', 'connected', 'disconnected', 'inspect', 'rejected']) this.agent.on(event, this.schedule)
    if (this.tail !== null) this.tail.onChange = this.schedule
    this.timer = setInterval(() => this.render(), TICK_MS)
    this.timer.unref()
    this.render()
  }

  /** A line for the screen's notes (e.g. a share link), shown under the URLs. */
  note(line: string): void {
    this.notes.push(line)
    if (this.notes.length > 3) this.notes.shift()
    this.schedule()
  }

  stop(): void {
    if (!this.running) return
    this.running = false
    this.unsubscribe?.()
    for (const event of ['tunnel', 'forward', 'connected', 'disconnected', 'inspect', 'rejected']) this.agent.off(event, this.schedule)
    if (this.tail !== null) this.tail.onChange = null
    if (this.timer !== null) clearInterval(this.timer)
    if (this.frame !== null) clearTimeout(this.frame)
    this.out.write('\x1b[?25h\x1b[?1049l')
  }

  private readonly schedule = (): void => {
    if (!this.running || this.frame !== null) return
    this.frame = setTimeout(() => {
      this.frame = null
      this.render()
    }, FRAME_MS)
  }

  private render(): void {
    if (!this.running) return
    const width = Math.max(40, this.out.columns ?? 100)
    const lines = screenLines(this.agent.status(), this.requests, this.notes, this.tail?.lines ?? [], this.now(), width)
    const height = this.out.rows ?? 40
    this.out.write(`\x1b[H\x1b[2J${lines.slice(0, height).map((l) => fit(l, width)).join('\r\n')}`)
  }
}

/** The screen as text lines (pure, for tests). */
export function screenLines(status: AgentStatus, requests: readonly RequestLine[], notes: readonly string[], logs: readonly string[], nowMs: number, width: number): string[] {
  const lines: string[] = []
  const title = `Porchlight ${AGENT_VERSION}`
  const quit = '(Ctrl+C to quit)'
  lines.push(`${title}${' '.repeat(Math.max(1, width - title.length - quit.length))}${quit}`, '')
  const label = (name: string): string => name.padEnd(15)
  lines.push(label('Link') + linkText(status, nowMs))
  const tunnels = status.tunnels
  if (tunnels.length === 0) lines.push(label('Forwarding') + 'no tunnels')
  for (const t of tunnels) {
    const where = t.url !== null ? `${t.url} -> ${t.to}` : `(${t.state}) -> ${t.to}${t.code !== undefined ? `  ${t.code}` : ''}`
    lines.push(label('Forwarding') + where)
  }
  for (const note of notes) lines.push(label('') + note)
  lines.push(label('Inspector') + (status.inspect !== null ? `http://${status.inspect}/` : 'off'))
  let total = 0
  let open = 0
  const byClass = { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }
  let errors = 0
  for (const t of tunnels) {
    if (t.traffic === undefined) continue
    total += t.traffic.requests
    open += t.traffic.open
    errors += t.traffic.errors
    for (const k of Object.keys(byClass) as Array<keyof typeof byClass>) byClass[k] += t.traffic.byStatus[k]
  }
  lines.push(label('Requests') + `${total} total, ${open} open   2xx ${byClass['2xx']}  3xx ${byClass['3xx']}  4xx ${byClass['4xx']}  5xx ${byClass['5xx']}  errors ${errors}`)
  lines.push(label('Connections') + `${status.streams} open`)
  for (const log of logs) lines.push(label('Log') + log)
  lines.push('', 'HTTP Requests', '-------------')
  const pathWidth = Math.max(10, width - 40)
  for (const r of requests) {
    const status = r.status !== 0 ? String(r.status) : (r.error ?? 'error').replace('PL_ERR_', '')
    lines.push(`${r.method.padEnd(7)} ${fit(r.path, pathWidth).padEnd(pathWidth)} ${status.padEnd(8)} ${String(r.ms).padStart(6)} ms`)
  }
  return lines
}

function linkText(status: AgentStatus, nowMs: number): string {
  if (status.connected) return `online (${status.agent ?? '?'} @ ${status.relay})`
  if (status.reconnect?.nextAttemptAt != null) {
    const inS = Math.max(0, Math.ceil((Date.parse(status.reconnect.nextAttemptAt) - nowMs) / 1000))
    return `reconnecting (attempt ${status.reconnect.attempt}, next in ${inS}s)${status.lastError !== null ? `  ${status.lastError.code}` : ''}`
  }
  return `${status.state} (${status.relay})`
}

/** Cuts a line to the screen width (control characters a visitor sent never reach the terminal). */
function fit(text: string, width: number): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\x00-\x1f\x7f-\x9f]/g, '?')
  return clean.length <= width ? clean : `${clean.slice(0, width - 1)}…`
}
