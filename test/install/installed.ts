// Helpers for the install tests: run an installed command to completion, and serve one visitor
// through a relay and an agent started from installed commands (not from the checkout's dist/).
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ChildHandle, jsonLines } from '../e2e/harness/child.js'
import { randomToken, sha256Hex, writeYaml } from '../e2e/harness/config.js'
import { startHttpOrigin } from '../e2e/harness/origins.js'
import { splitHostPort } from '../e2e/harness/ports.js'
import { ROOT } from '../e2e/harness/processes.js'
import type { Scope } from '../e2e/harness/scope.js'
import { visit, type VisitResult } from '../e2e/harness/visitor.js'

export { ROOT }

/** The product's version, which `porchlight --version` prints and the artefacts are named after. */
export const VERSION: string = (JSON.parse(readFileSync(join(ROOT, 'packages/agent/package.json'), 'utf8')) as { version: string }).version

export interface RunResult {
  code: number | null
  stdout: string
  stderr: string
}

export interface RunOptions {
  env: NodeJS.ProcessEnv
  cwd: string
  timeoutMs?: number
}

/** Runs command (a name looked up on env.PATH, or a path) to completion; never rejects. */
export function run(command: string, args: string[], opts: RunOptions): Promise<RunResult> {
  return new Promise(resolve => {
    execFile(command, args, { env: opts.env, cwd: opts.cwd, timeout: opts.timeoutMs ?? 120_000, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const failure = err as (Error & { code?: number | string }) | null
      const code = failure === null ? 0 : typeof failure.code === 'number' ? failure.code : null
      resolve({ code, stdout: String(stdout), stderr: String(stderr) + (failure !== null && code === null ? `\n[run] ${failure.message}` : '') })
    })
  })
}

/** A directory outside the checkout (so no node_modules above it), removed when the scope ends. */
export function outsideDir(t: Scope, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `porchlight-${prefix}-`))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** This process's environment without tap's, npm's and Porchlight's variables. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(NODE_OPTIONS|TAP|_TAPJS|npm_|PORCHLIGHT_)/i.test(k)) continue
    env[k] = v
  }
  return { ...env, ...extra }
}

export interface Installed {
  /** How to start the relay and the agent: a command (name on env.PATH or a path). */
  relay: string
  agent: string
  env: NodeJS.ProcessEnv
  /** Working directory for both (and their HOME). */
  dir: string
}

export interface Served {
  check: RunResult
  visit: VisitResult
  /** Everything the relay and the agent printed (stdout and stderr) up to the visit. */
  output: string
}

/**
 * `porchlight-relay check` then `serve` with a fresh relay.yaml, `porchlight up` with one HTTP
 * tunnel to a local origin, and one visitor request through the relay's public port.
 */
export async function serveVisitor(t: Scope, cmds: Installed): Promise<Served> {
  const token = randomToken()
  const relayFile = join(cmds.dir, 'relay.yaml')
  writeYaml(relayFile, {
    domain: 'localhost',
    listen: { public: '127.0.0.1:0', agents: '127.0.0.1:0', admin: false },
    admin_token_sha256: sha256Hex(randomToken()),
    agents: { laptop: { token_sha256: sha256Hex(token), hosts: ['*.localhost'] } },
  })
  const env = { ...cmds.env, HOME: cmds.dir, PORCHLIGHT_LOG_FORMAT: 'json' }
  const check = await run(cmds.relay, ['check', '-c', relayFile], { env, cwd: cmds.dir, timeoutMs: 15_000 })

  const relay = new ChildHandle(t, { label: 'installed relay', command: cmds.relay, args: ['serve', '-c', relayFile], env, cwd: cmds.dir })
  const line = await relay.waitForLine('stdout', l => jsonLines([l])[0]?.['msg'] === 'ready', 15_000, 'ready line')
  const ready = jsonLines([line])[0] as { public: string; agents: string }

  const origin = await startHttpOrigin(t, { '/': (_req, res) => res.end('served by the installed agent') })
  const agentFile = join(cmds.dir, 'agent.yaml')
  writeYaml(agentFile, {
    relay: `ws://127.0.0.1:${splitHostPort(ready.agents).port}`,
    token,
    inspect: false,
    tunnels: [{ http: 'installed', to: origin.url }],
  })
  const agent = new ChildHandle(t, { label: 'installed agent', command: cmds.agent, args: ['up', '-c', agentFile], env, cwd: cmds.dir })
  await agent.waitForLine('stdout', /^Forwarding /, 15_000, 'Forwarding line')
  const visited = await visit(splitHostPort(ready.public).port, { host: 'installed.localhost' })
  const output = [relay, agent].flatMap(c => [...c.stdoutLines, ...c.stderrLines]).join('\n')
  return { check, visit: visited, output }
}

export interface Guided {
  init: RunResult
  add: RunResult
  login: RunResult
  /** The public URL `porchlight http` printed. */
  publicUrl: URL
  visit: VisitResult
  /** Everything the relay and the agent printed (stdout and stderr) up to the visit. */
  output: string
}

/**
 * The guided set-up of docs/quickstart.md with installed commands, in two HOMEs under cmds.dir:
 * the "VPS" runs `init`, `serve` and `agent add`, the "laptop" runs the printed `porchlight login`
 * line and `porchlight http PORT`, and a visitor asks for the printed URL. As in
 * test/e2e/setup.test.ts, only the listen addresses (loopback, port 0) and `--relay-url` differ.
 */
export async function guidedSetup(t: Scope, cmds: Installed): Promise<Guided> {
  const vps = join(cmds.dir, 'vps')
  const laptop = join(cmds.dir, 'laptop')
  mkdirSync(vps)
  mkdirSync(laptop)
  const dir = join(vps, 'porchlight')
  const onVps = { env: { ...cmds.env, HOME: vps, PORCHLIGHT_LOG_FORMAT: 'json' }, cwd: vps, timeoutMs: 15_000 }
  const onLaptop = { env: { ...cmds.env, HOME: laptop, PORCHLIGHT_LOG_FORMAT: 'json' }, cwd: laptop, timeoutMs: 15_000 }

  const init = await run(cmds.relay, ['init', '--domain', 'tunnel.example.com', '--dir', dir,
    '--listen-public', '127.0.0.1:0', '--listen-agents', '127.0.0.1:0', '--listen-admin', '127.0.0.1:0'], onVps)
  const relay = new ChildHandle(t, { label: 'installed relay', command: cmds.relay, args: ['serve'], env: onVps.env, cwd: dir })
  const line = await relay.waitForLine('stdout', l => jsonLines([l])[0]?.['msg'] === 'ready', 15_000, 'ready line')
  const ready = jsonLines([line])[0] as { public: string; agents: string }

  const add = await run(cmds.relay, ['agent', 'add', 'laptop', '--relay-url', `wss://127.0.0.1:${splitHostPort(ready.agents).port}`], { ...onVps, cwd: dir })
  const code = /^porchlight login (\S+)$/m.exec(add.stdout)?.[1] ?? ''
  const login = await run(cmds.agent, ['login', code], onLaptop)

  const origin = await startHttpOrigin(t, { '/': (_req, res) => res.end('hello from the laptop') })
  const share = new ChildHandle(t, { label: 'installed agent http', command: cmds.agent, args: ['http', String(origin.port)], env: onLaptop.env, cwd: laptop })
  const forwarding = await share.waitForLine('stdout', /^Forwarding /, 15_000, 'Forwarding line')
  const publicUrl = new URL(/^Forwarding (\S+) ->/.exec(forwarding)?.[1] ?? 'http://invalid/')
  const visited = await visit(splitHostPort(ready.public).port, { host: publicUrl.hostname })
  const output = [relay, share].flatMap(c => [...c.stdoutLines, ...c.stderrLines]).join('\n')
  return { init, add, login, publicUrl, visit: visited, output }
}
