import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Scope } from './scope.js'
import { ChildHandle, childEnv, jsonLines, nodeCommand } from './child.js'
import { randomToken, sha256Hex, writeYaml, type AgentYaml, type RelayAgentYaml, type RelayYaml, type TunnelYaml } from './config.js'
import { splitHostPort } from './ports.js'
import { childDir } from './workdir.js'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
/**
 * The built binaries: the bundles the commands run (scripts/bundle.mjs). PORCHLIGHT_E2E_RELAY_BIN /
 * _AGENT_BIN point the suite at other builds, e.g. tsc's one file per module (dist/bin.js).
 */
export const RELAY_BIN = process.env['PORCHLIGHT_E2E_RELAY_BIN'] ?? join(ROOT, 'packages/server/dist/bundle/bin.js')
export const AGENT_BIN = process.env['PORCHLIGHT_E2E_AGENT_BIN'] ?? join(ROOT, 'packages/agent/dist/bundle/bin.js')

/** How long a child may take to print its readiness line (cold start of node + config load). */
const READY_TIMEOUT_MS = 15_000

function requireBin(bin: string): string {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: e2e tests run the built binaries, run \`npm run build\` first`)
  return bin
}

function homeIn(dir: string): string {
  const home = join(dir, 'home')
  mkdirSync(home, { recursive: true })
  return home
}

// ---------------------------------------------------------------- relay

export interface RelayAgentOptions {
  hosts?: string[]
  tcp_ports?: Array<number | string>
  outbound?: string[]
  require_cert?: boolean
  /** Use this token instead of a fresh random one. */
  token?: string
}

export interface RelayOptions {
  /** Agents the relay knows; default `{ laptop: { hosts: ['*.localhost'] } }`. */
  agents?: Record<string, RelayAgentOptions>
  domain?: string
  heartbeat?: { interval_ms: number; timeout_ms: number }
  /** relay.yaml `limits` (e.g. `{ origin_timeout_ms: 500 }`). */
  limits?: Record<string, number | null>
  /** false: no admin listener. */
  admin?: boolean
  /** Other top-level relay.yaml keys (tls, pki, trust_proxy, ...), written as given. */
  extra?: Record<string, unknown>
  env?: Record<string, string>
  /** Another script to run instead of the built relay (harness self-tests). */
  bin?: string
  /** A command that execs the relay in its own process, e.g. ['prlimit', '--nofile=256'] to cap fds. */
  execUnder?: string[]
}

/** The relay's `"msg":"ready"` line: the addresses it actually bound. */
interface ReadyLine {
  public: string
  agents: string
  admin: string | null
  public_tls: string | null
}

export class RelayProcess {
  readonly dir: string
  readonly configFile: string
  /** The relay.yaml object; edit it and call writeConfig()/restart() to change the relay. */
  readonly config: RelayYaml
  /** Agent name -> its plain token (relay.yaml only holds the hashes). */
  readonly tokens: Record<string, string>
  readonly adminToken: string
  publicPort = 0
  agentsPort = 0
  adminPort: number | null = null
  publicTls: string | null = null
  /** Every child this relay has run, oldest first (restart() adds one). */
  readonly runs: ChildHandle[] = []
  private readonly t: Scope
  private readonly opts: RelayOptions

  constructor(t: Scope, opts: RelayOptions) {
    this.t = t
    this.opts = opts
    this.dir = childDir(t, 'relay')
    this.configFile = join(this.dir, 'relay.yaml')
    this.adminToken = randomToken()
    this.tokens = {}
    const agents: Record<string, RelayAgentYaml> = {}
    for (const [name, a] of Object.entries(opts.agents ?? { laptop: { hosts: ['*.localhost'] } })) {
      const token = a.token ?? randomToken()
      this.tokens[name] = token
      agents[name] = {
        token_sha256: sha256Hex(token),
        hosts: a.hosts ?? ['*.localhost'],
        ...(a.tcp_ports ? { tcp_ports: a.tcp_ports } : {}),
        ...(a.outbound ? { outbound: a.outbound } : {}),
        ...(a.require_cert !== undefined ? { require_cert: a.require_cert } : {}),
      }
    }
    this.config = {
      domain: opts.domain ?? 'localhost',
      listen: { public: '127.0.0.1:0', agents: '127.0.0.1:0', admin: opts.admin === false ? false : '127.0.0.1:0' },
      admin_token_sha256: sha256Hex(this.adminToken),
      ...(opts.heartbeat ? { heartbeat: opts.heartbeat } : {}),
      ...(opts.limits ? { limits: opts.limits } : {}),
      agents,
      ...opts.extra,
    }
  }

  /** The child currently (or last) running. */
  get current(): ChildHandle {
    const run = this.runs[this.runs.length - 1]
    if (!run) throw new Error('relay was never started')
    return run
  }

  get pid(): number { return this.current.pid }
  get exited(): Promise<number | null> { return this.current.exited }
  get publicUrl(): string { return `http://127.0.0.1:${this.publicPort}` }
  get agentsUrl(): string { return `ws://127.0.0.1:${this.agentsPort}` }
  get adminUrl(): string | null { return this.adminPort === null ? null : `http://127.0.0.1:${this.adminPort}` }

  writeConfig(): void {
    writeYaml(this.configFile, this.config)
  }

  /** Writes relay.yaml, spawns `serve`, and resolves once the ready line reports the bound ports. */
  async start(): Promise<void> {
    this.writeConfig()
    const bin = requireBin(this.opts.bin ?? RELAY_BIN)
    const run = new ChildHandle(this.t, {
      label: this.runs.length === 0 ? 'relay' : `relay#${this.runs.length + 1}`,
      ...execUnder(this.opts.execUnder, nodeCommand(bin, ['serve', '-c', this.configFile])),
      env: childEnv(homeIn(this.dir), this.opts.env),
      cwd: this.dir,
    })
    this.runs.push(run)
    const line = await run.waitForLine('stdout', l => jsonLines([l])[0]?.['msg'] === 'ready', READY_TIMEOUT_MS, 'ready line')
    const ready = jsonLines([line])[0] as unknown as ReadyLine
    this.publicPort = splitHostPort(ready.public).port
    this.agentsPort = splitHostPort(ready.agents).port
    this.adminPort = ready.admin ? splitHostPort(ready.admin).port : null
    this.publicTls = ready.public_tls ?? null
  }

  /**
   * Stops the relay if it still runs, pins the ports it had learned into relay.yaml (so agents find
   * it where it was), and starts it again.
   */
  async restart(): Promise<void> {
    await this.kill('SIGTERM')
    this.config.listen.public = `127.0.0.1:${this.publicPort}`
    // `shared` rides on public_tls and has no port of its own to pin.
    if (this.config.listen.agents !== 'shared') this.config.listen.agents = `127.0.0.1:${this.agentsPort}`
    if (this.adminPort !== null) this.config.listen.admin = `127.0.0.1:${this.adminPort}`
    await this.start()
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    return this.current.kill(signal)
  }

  /** Parsed JSON log lines of every run so far, oldest first. */
  logs(): Array<Record<string, unknown>> {
    return this.runs.flatMap(r => jsonLines(r.stdoutLines))
  }

  /** Access log lines (msg "request"). */
  accessLogs(): Array<Record<string, unknown>> {
    return this.logs().filter(l => l['msg'] === 'request')
  }

  /** Raw stdout and stderr of every run, for substring asserts. */
  output(): string {
    return this.runs.map(r => [...r.stdoutLines, ...r.stderrLines].join('\n')).join('\n')
  }

  /** GET /api/agents with the admin token: the connected agents, their streams and tunnels. */
  async connectedAgents(): Promise<Array<{ name: string; session: string; streams: number }>> {
    if (this.adminUrl === null) throw new Error('this relay has no admin listener')
    const res = await fetch(`${this.adminUrl}/api/agents`, { headers: { authorization: `Bearer ${this.adminToken}` } })
    if (res.status !== 200) throw new Error(`GET /api/agents: ${res.status}`)
    return (await res.json()) as Array<{ name: string; session: string; streams: number }>
  }

  /** Waits for a JSON log line of the current run that satisfies match. */
  async waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs: number, what: string): Promise<Record<string, unknown>> {
    const line = await this.current.waitForLine('stdout', l => { const j = jsonLines([l])[0]; return j !== undefined && match(j) }, timeoutMs, what)
    return jsonLines([line])[0] ?? {}
  }
}

/** Starts a relay on ephemeral loopback ports with fresh agent and admin tokens. */
export async function startRelay(t: Scope, opts: RelayOptions = {}): Promise<RelayProcess> {
  const relay = new RelayProcess(t, opts)
  await relay.start()
  return relay
}

// ---------------------------------------------------------------- agent

export interface AgentOptions {
  /** Which of the relay's agents this is (its token is used); default: the relay's first agent. */
  name?: string
  tunnels?: TunnelYaml[]
  /** Present this token instead of the relay's (bad-token tests). */
  token?: string
  /** Other top-level agent.yaml keys, written as given. */
  extra?: Record<string, unknown>
  /** Run this command line instead of `up -c agent.yaml` (quick modes); relay and token go in env. */
  args?: string[]
  env?: Record<string, string>
  /** `Forwarding` lines to wait for; default: one per tunnel (1 with `args`). */
  forwarding?: number
  /** Wait for the process to exit instead of for `Forwarding` lines. */
  expectExit?: boolean
  /** Also wait for a stdout or stderr line matching this (e.g. a PL_ERR_ code of a rejected tunnel). */
  waitFor?: RegExp
  timeoutMs?: number
  bin?: string
}

/** One `Forwarding PUBLIC -> LOCAL` line of the agent's stdout. */
export interface Forwarding {
  publicUrl: string
  localUrl: string
}

const FORWARDING_RE = /^Forwarding (\S+) -> (\S+)/

/** "http://a.localhost:80/" and "http://a.localhost:80" name the same site; compare without the slash. */
function withoutRootSlash(url: string): string {
  return url.endsWith('/') && url.indexOf('/', url.indexOf('//') + 2) === url.length - 1 ? url.slice(0, -1) : url
}

export class AgentProcess {
  readonly handle: ChildHandle
  readonly configFile: string | null
  readonly dir: string

  constructor(handle: ChildHandle, dir: string, configFile: string | null) {
    this.handle = handle
    this.dir = dir
    this.configFile = configFile
  }

  get pid(): number { return this.handle.pid }
  get exited(): Promise<number | null> { return this.handle.exited }

  /** Every `Forwarding` line printed so far. */
  get forwarding(): Forwarding[] {
    return this.handle.stdoutLines.flatMap(l => {
      const m = FORWARDING_RE.exec(l)
      return m && m[1] !== undefined && m[2] !== undefined ? [{ publicUrl: withoutRootSlash(m[1]), localUrl: withoutRootSlash(m[2]) }] : []
    })
  }

  /** Public URLs of the accepted tunnels, in the order the agent printed them. */
  get urls(): string[] {
    return this.forwarding.map(f => f.publicUrl)
  }

  stdout(): string { return this.handle.stdoutLines.join('\n') }
  stderr(): string { return this.handle.stderrLines.join('\n') }
  /** Parsed pino lines from stderr. */
  logs(): Array<Record<string, unknown>> { return jsonLines(this.handle.stderrLines) }

  kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    return this.handle.kill(signal)
  }

  waitForLine(match: RegExp, timeoutMs: number, what = String(match)): Promise<string> {
    return this.handle.waitForLine('any', match, timeoutMs, what)
  }
}

/**
 * Starts an agent against relay: writes agent.yaml (relay URL, the agent's token, inspect off,
 * tunnels), runs `porchlight up`, and waits for its `Forwarding` lines, or for its exit.
 */
export async function startAgent(t: Scope, relay: RelayProcess, opts: AgentOptions = {}): Promise<AgentProcess> {
  const name = opts.name ?? Object.keys(relay.tokens)[0] ?? 'laptop'
  const token = opts.token ?? relay.tokens[name]
  if (token === undefined) throw new Error(`startAgent: the relay has no agent named ${name}`)
  const dir = childDir(t, `agent-${name}`)
  const tunnels = opts.tunnels ?? []
  let args: string[]
  let configFile: string | null = null
  const env: Record<string, string> = { ...opts.env }
  if (opts.args) {
    args = opts.args
    env['PORCHLIGHT_RELAY'] ??= relay.agentsUrl
    env['PORCHLIGHT_TOKEN'] ??= token
  } else {
    configFile = join(dir, 'agent.yaml')
    const config: AgentYaml = { relay: relay.agentsUrl, token, inspect: false, tunnels, ...opts.extra }
    writeYaml(configFile, config)
    args = ['up', '-c', configFile]
  }
  const handle = new ChildHandle(t, {
    label: `agent ${name}`,
    ...nodeCommand(requireBin(opts.bin ?? AGENT_BIN), args),
    env: childEnv(homeIn(dir), env),
    cwd: dir,
  })
  const agent = new AgentProcess(handle, dir, configFile)
  const timeoutMs = opts.timeoutMs ?? READY_TIMEOUT_MS
  if (opts.expectExit) {
    await handle.waitForExit(timeoutMs)
    return agent
  }
  const wanted = opts.forwarding ?? (opts.args ? 1 : tunnels.length)
  if (wanted > 0) {
    await handle.waitForLine('stdout', () => agent.forwarding.length >= wanted, timeoutMs, `${wanted} Forwarding line(s)`)
  }
  if (opts.waitFor) await handle.waitForLine('any', opts.waitFor, timeoutMs, String(opts.waitFor))
  return agent
}

/**
 * `wrapper... command args`. The wrapper must exec the command in its own process (prlimit does;
 * the faketime wrapper does not), so the harness's signals still reach the relay.
 */
function execUnder(wrapper: string[] | undefined, cmd: { command: string; args: string[] }): { command: string; args: string[] } {
  if (wrapper === undefined || wrapper.length === 0) return cmd
  return { command: wrapper[0]!, args: [...wrapper.slice(1), cmd.command, ...cmd.args] }
}

// ---------------------------------------------------------------- one-shot commands

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface CliOptions {
  env?: Record<string, string>
  /** Working directory; default: a fresh temp dir (also HOME unless env.HOME is given). */
  cwd?: string
  /** Written to stdin, which is then closed (closed at once when absent). */
  input?: string
  timeoutMs?: number
  /** Run this script instead of the built binary (harness self-tests). */
  bin?: string
}

/** Runs `porchlight-relay ARGS` ('relay') or `porchlight ARGS` ('agent') to completion. */
export async function runCli(which: 'relay' | 'agent', args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const bin = requireBin(opts.bin ?? (which === 'relay' ? RELAY_BIN : AGENT_BIN))
  const scratch = mkdtempSync(join(tmpdir(), 'porchlight-cli-'))
  try {
    return await new Promise<CliResult>(resolvePromise => {
      const command = nodeCommand(bin, args)
      const child = execFile(command.command, command.args, {
        cwd: opts.cwd ?? scratch,
        env: childEnv(opts.env?.['HOME'] ?? scratch, opts.env),
        timeout: opts.timeoutMs ?? READY_TIMEOUT_MS,
        killSignal: 'SIGKILL',
        maxBuffer: 16 * 1024 * 1024,
      }, (err, stdout, stderr) => {
        const failure = err as (Error & { code?: number | string; signal?: NodeJS.Signals | null }) | null
        const code = failure === null ? 0 : typeof failure.code === 'number' ? failure.code : null
        resolvePromise({ code, signal: failure?.signal ?? null, stdout: String(stdout), stderr: String(stderr) })
      })
      child.stdin?.on('error', () => { /* the command may exit without reading stdin */ })
      child.stdin?.end(opts.input ?? '')
    })
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
}
