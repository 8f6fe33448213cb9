// Helpers for the install tests: run an installed command to completion, and serve one visitor
// through a relay and an agent started from installed commands (not from the checkout's dist/).
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
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
