import { spawn, type ChildProcess } from 'node:child_process'
import { EventEmitter } from 'node:events'
import type { Scope } from './scope.js'

/** What a line waiter reads: one stream of the child, or either. */
export type LineSource = 'stdout' | 'stderr' | 'any'

export interface SpawnOptions {
  /** Prefix for dumped logs, e.g. "relay" or "agent laptop". */
  label: string
  command: string
  args: string[]
  env: NodeJS.ProcessEnv
  cwd: string
}

/** Lines kept per stream; older ones are dropped so a chatty child cannot exhaust memory. */
const MAX_LINES = 20_000
/** Lines per stream printed for a failed test: enough context, not a flood of access lines. */
const DUMP_LINES = 200
/** Grace between the polite signal and SIGKILL in teardown (the brief: SIGKILL after 2 s). */
export const KILL_GRACE_MS = 2000

const live = new Set<ChildProcess>()
// Last resort if the test process itself dies: never leave a relay or agent behind.
process.once('exit', () => { for (const c of live) c.kill('SIGKILL') })

/**
 * A spawned child with its output split into lines, waiters on those lines, and a teardown that
 * prints its logs when the test failed and then kills it (SIGTERM, SIGKILL after KILL_GRACE_MS).
 */
export class ChildHandle {
  readonly label: string
  readonly child: ChildProcess
  readonly stdoutLines: string[] = []
  readonly stderrLines: string[] = []
  /** Exit code, or null when a signal ended it. Resolves after stdout/stderr are drained. */
  readonly exited: Promise<number | null>
  exitCode: number | null | undefined = undefined
  exitSignal: NodeJS.Signals | null = null
  private readonly events = new EventEmitter()

  constructor(t: Scope, opts: SpawnOptions) {
    this.label = opts.label
    this.child = spawn(opts.command, opts.args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] })
    live.add(this.child)
    this.events.setMaxListeners(100)
    this.collect('stdout', this.stdoutLines)
    this.collect('stderr', this.stderrLines)
    this.exited = new Promise(resolve => {
      this.child.once('error', err => {
        this.stderrLines.push(`[harness] spawn failed: ${err.message}`)
        this.exitCode = null
        live.delete(this.child)
        this.events.emit('exit')
        resolve(null)
      })
      this.child.once('close', (code, signal) => {
        this.exitCode = code
        this.exitSignal = signal
        live.delete(this.child)
        this.events.emit('exit')
        resolve(code)
      })
    })
    t.teardown(async () => {
      await this.kill('SIGTERM')
      if (!t.passing()) process.stderr.write(this.dump(t.name))
    })
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.label}: process has no pid (spawn failed)`)
    return this.child.pid
  }

  get running(): boolean {
    return this.exitCode === undefined
  }

  /** Sends signal; unless it is SIGKILL, follows with SIGKILL after graceMs. Resolves with the exit code. */
  async kill(signal: NodeJS.Signals = 'SIGTERM', graceMs = KILL_GRACE_MS): Promise<number | null> {
    if (!this.running) return this.exitCode ?? null
    this.child.kill(signal)
    if (signal === 'SIGKILL') return this.exited
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs)
    try {
      return await this.exited
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * Resolves with the first line (already seen or future) that matches; rejects with the log tail
   * when the child exits first or timeoutMs passes. `what` names the wait in that error.
   */
  waitForLine(source: LineSource, match: RegExp | ((line: string) => boolean), timeoutMs: number, what: string): Promise<string> {
    const test = typeof match === 'function' ? match : (line: string) => match.test(line)
    const seen = this.linesOf(source).find(test)
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const onLine = (from: 'stdout' | 'stderr', line: string): void => {
        if ((source === 'any' || source === from) && test(line)) finish(null, line)
      }
      const onExit = (): void => finish(new Error(`${this.label} exited (code ${String(this.exitCode)}, signal ${String(this.exitSignal)}) before ${what}\n${this.tail()}`))
      const timer = setTimeout(() => finish(new Error(`${this.label}: no ${what} within ${timeoutMs} ms\n${this.tail()}`)), timeoutMs)
      const finish = (err: Error | null, line?: string): void => {
        clearTimeout(timer)
        this.events.off('line', onLine)
        this.events.off('exit', onExit)
        if (err) reject(err)
        else resolve(line ?? '')
      }
      this.events.on('line', onLine)
      if (!this.running) onExit()
      else this.events.on('exit', onExit)
    })
  }

  /** Waits for the exit; rejects with the log tail if it takes longer than timeoutMs. */
  async waitForExit(timeoutMs: number): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.label} still running after ${timeoutMs} ms\n${this.tail()}`)), timeoutMs)
    })
    try {
      return await Promise.race([this.exited, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  linesOf(source: LineSource): string[] {
    if (source === 'stdout') return this.stdoutLines
    if (source === 'stderr') return this.stderrLines
    return [...this.stdoutLines, ...this.stderrLines]
  }

  /** The child's lines, labelled with their stream, for a failing test's output (the last maxLines of each). */
  dump(testName: string, maxLines = DUMP_LINES): string {
    const part = (name: string, lines: string[]): string[] => {
      const omitted = lines.length - maxLines
      const shown = lines.slice(-maxLines).map(l => `  [${this.label} ${name}] ${l}`)
      return omitted > 0 ? [`  [${this.label} ${name}] … ${omitted} earlier lines omitted`, ...shown] : shown
    }
    const body = [...part('stdout', this.stdoutLines), ...part('stderr', this.stderrLines)].join('\n')
    return `# ---- ${this.label} (pid ${String(this.child.pid)}) logs for failed test "${testName}" ----\n${body}\n`
  }

  /** The last lines of each stream, each cut short: enough to say why, the full dump follows. */
  private tail(lines = 8, maxChars = 300): string {
    const cut = (l: string): string => (l.length > maxChars ? `${l.slice(0, maxChars)}…` : l)
    const out = this.stdoutLines.slice(-lines).map(l => `  stdout| ${cut(l)}`)
    const err = this.stderrLines.slice(-lines).map(l => `  stderr| ${cut(l)}`)
    return [...out, ...err].join('\n')
  }

  private collect(name: 'stdout' | 'stderr', into: string[]): void {
    const stream = this.child[name]
    if (!stream) return
    stream.setEncoding('utf8')
    let partial = ''
    const push = (line: string): void => {
      into.push(line)
      // Trim in large steps: a splice per line costs O(n) and skews benchmarks that log per request.
      if (into.length > 2 * MAX_LINES) into.splice(0, into.length - MAX_LINES)
      this.events.emit('line', name, line)
    }
    stream.on('data', (chunk: string) => {
      partial += chunk
      let nl = partial.indexOf('\n')
      while (nl !== -1) {
        push(partial.slice(0, nl).replace(/\r$/, ''))
        partial = partial.slice(nl + 1)
        nl = partial.indexOf('\n')
      }
    })
    stream.on('end', () => { if (partial !== '') push(partial) })
  }
}

/**
 * `node SCRIPT ARGS` as a command line that really runs without tap's hooks. tap's process-info
 * hook (process-on-spawn) puts its `--import` back into NODE_OPTIONS of every child it sees, even
 * when `env` removed it, and that loader costs each relay and agent about 40 MB RSS and start-up
 * time. `env -u` drops it again just before node starts, so tests measure the product alone.
 */
export function nodeCommand(script: string, args: string[]): { command: string; args: string[] } {
  // PORCHLIGHT_E2E_NODE_ARGS: extra node flags for every child (profiling, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p").
  const nodeArgs = (process.env['PORCHLIGHT_E2E_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '')
  return { command: '/usr/bin/env', args: ['-u', 'NODE_OPTIONS', process.execPath, ...nodeArgs, script, ...args] }
}

const PROXY_VARIABLES = new Set(['http_proxy', 'https_proxy', 'no_proxy', 'all_proxy'])

/**
 * The environment for a relay or agent: the test's own, minus tap's loaders and hooks (children
 * run the built JavaScript, not TypeScript), minus inherited Porchlight and proxy settings, plus `extra`.
 */
export function childEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k.startsWith('TAP') || k.startsWith('_TAPJS') || k.startsWith('PORCHLIGHT_')) continue
    // A proxy of the machine running the suite must not capture loopback links; tests set their own.
    if (PROXY_VARIABLES.has(k.toLowerCase())) continue
    env[k] = v
  }
  return {
    ...env,
    HOME: home,
    PORCHLIGHT_LOG_FORMAT: 'json',
    PORCHLIGHT_BACKOFF_MAX_MS: '2000',
    ...extra,
  }
}

/** Parses pino JSON lines; anything else (a crash trace, a human line) is skipped. */
export function jsonLines(lines: readonly string[]): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = []
  for (const line of lines) {
    if (!line.startsWith('{')) continue
    try {
      const value: unknown = JSON.parse(line)
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) out.push(value as Record<string, unknown>)
    } catch {
      // not JSON after all; the raw line is still in the dump
    }
  }
  return out
}
