import { readFileSync, unlinkSync } from 'node:fs'
import { readFile, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'

/**
 * `STATE/relay-run.json`: how other commands find the relay that `serve` runs for a config.
 * `agent add|remove|allow` read it to send SIGHUP and to wait for the relay to confirm the
 * reload (`reloads` goes up); it also records the addresses actually bound, so a config with
 * port 0 still yields a relay URL. Written atomically, mode 0600, removed when serve exits.
 */
export interface RunFile {
  pid: number
  /** Absolute path of the relay.yaml this process serves. */
  config: string
  started_at: string
  /** Successful SIGHUP reloads so far. */
  reloads: number
  agents: string
  public: string
  admin: string | null
}

export const RUN_FILE = 'relay-run.json'

export function runFilePath(stateDir: string): string {
  return path.join(stateDir, RUN_FILE)
}

export async function writeRunFile(stateDir: string, run: RunFile): Promise<void> {
  const file = runFilePath(stateDir)
  const tmp = `${file}.${process.pid}.tmp`
  await writeFile(tmp, `${JSON.stringify(run, null, 2)}\n`, { mode: 0o600 })
  await rename(tmp, file)
}

export async function readRunFile(stateDir: string): Promise<RunFile | null> {
  try {
    const run = JSON.parse(await readFile(runFilePath(stateDir), 'utf8')) as Partial<RunFile>
    if (typeof run.pid !== 'number' || typeof run.config !== 'string' || typeof run.reloads !== 'number') return null
    return run as RunFile
  } catch {
    return null
  }
}

/** Removes the run file if it is still this process's (a newer relay may have replaced it). */
export function removeRunFileSync(stateDir: string, pid: number): void {
  try {
    const run = JSON.parse(readFileSync(runFilePath(stateDir), 'utf8')) as Partial<RunFile>
    if (run.pid === pid) unlinkSync(runFilePath(stateDir))
  } catch {
    // Gone already, or never written.
  }
}

/**
 * Is `run` a live relay serving `configFile`? The pid must exist and, where /proc exists, be a
 * `serve` process: a stale file whose pid was reused by another program must never get a SIGHUP
 * (which would end that program).
 */
export function isLiveRelay(run: RunFile, configFile: string): boolean {
  if (path.resolve(run.config) !== path.resolve(configFile)) return false
  try {
    process.kill(run.pid, 0)
  } catch (err) {
    // EPERM: it exists but belongs to another user; we could not signal it anyway.
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? cmdlineLooksLikeRelay(run.pid) : false
  }
  return cmdlineLooksLikeRelay(run.pid)
}

function cmdlineLooksLikeRelay(pid: number): boolean {
  let cmdline: string
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
  } catch {
    return process.platform !== 'linux'
  }
  return cmdline.split('\0').includes('serve')
}
