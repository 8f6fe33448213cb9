import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'

export const BIN = fileURLToPath(new URL('../../src/bin.ts', import.meta.url))

export interface CliChild {
  child: ChildProcess
  stdout: string[]
  stderr: string[]
  exited: Promise<number | null>
  waitForStdout(match: RegExp, timeoutMs?: number): Promise<string>
  waitForStderr(match: RegExp, timeoutMs?: number): Promise<string>
}

/** Runs `porchlight ARGS` from source (same loader flags as this test process); killed in teardown. */
export function spawnCli(t: Test, args: string[], env: Record<string, string>, stdin?: string): CliChild {
  const child = spawn(process.execPath, [...process.execArgv, BIN, ...args], {
    env: { PATH: process.env['PATH'] ?? '', PORCHLIGHT_LOG_FORMAT: 'json', PORCHLIGHT_BACKOFF_MAX_MS: '200', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const stdout: string[] = []
  const stderr: string[] = []
  const collect = (into: string[]) => {
    let partial = ''
    return (chunk: Buffer): void => {
      partial += chunk.toString('utf8')
      const lines = partial.split('\n')
      partial = lines.pop() ?? ''
      into.push(...lines)
    }
  }
  child.stdout?.on('data', collect(stdout))
  child.stderr?.on('data', collect(stderr))
  if (stdin !== undefined) child.stdin?.end(stdin)
  else child.stdin?.end()
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const waitFor = (lines: string[], match: RegExp, timeoutMs = 15_000): Promise<string> =>
    new Promise((resolve, reject) => {
      const started = Date.now()
      const check = (): void => {
        const hit = lines.find((l) => match.test(l))
        if (hit !== undefined) return resolve(hit)
        if (child.exitCode !== null || Date.now() - started > timeoutMs) {
          return reject(new Error(`no line matching ${match} (exit ${child.exitCode})\nstdout:\n${stdout.join('\n')}\nstderr:\n${stderr.join('\n')}`))
        }
        setTimeout(check, 25)
      }
      check()
    })
  return {
    child,
    stdout,
    stderr,
    exited,
    waitForStdout: (match, timeoutMs) => waitFor(stdout, match, timeoutMs),
    waitForStderr: (match, timeoutMs) => waitFor(stderr, match, timeoutMs),
  }
}

/** Runs a command to completion. */
export async function runCli(t: Test, args: string[], env: Record<string, string> = {}, stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const c = spawnCli(t, args, env, stdin)
  const code = await c.exited
  // Let the last 'data' events land.
  await new Promise((r) => setImmediate(r))
  return { code, stdout: c.stdout.join('\n'), stderr: c.stderr.join('\n') }
}
