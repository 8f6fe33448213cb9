import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { isAbsolute, join } from 'node:path'
import { parseAddress, type Address } from '@porchlight/shared/config'

/**
 * One small file per running agent process, `<pid>.json` (0600, in a 0700 directory), saying
 * which status API address it actually bound (4041 when 4040 was taken) and for which config, so
 * `porchlight status` and `porchlight link …` find it. Removed when the process ends; a file
 * left by a killed process is ignored (its pid is not alive) and removed by the next reader.
 */
export interface RuntimeRecord {
  pid: number
  /** The agent config path the process runs (or would read): the key status/link match on. */
  config: string
  /** host:port of the status API. */
  inspect: string
}

export interface RuntimeDeps {
  env?: NodeJS.ProcessEnv
  homeDir?: string
  /** Default: signal 0 (EPERM also means alive). */
  isAlive?: (pid: number) => boolean
}

/** $XDG_RUNTIME_DIR/porchlight, else $XDG_CONFIG_HOME (or ~/.config)/porchlight/run. */
export function runtimeDir(deps: RuntimeDeps = {}): string {
  const env = deps.env ?? process.env
  const runtime = env['XDG_RUNTIME_DIR']
  if (runtime !== undefined && isAbsolute(runtime)) return join(runtime, 'porchlight')
  const xdg = env['XDG_CONFIG_HOME']
  const base = xdg !== undefined && isAbsolute(xdg) ? xdg : join(deps.homeDir ?? homedir(), '.config')
  return join(base, 'porchlight', 'run')
}

/** Writes (or rewrites) this process's record; returns its path. */
export function writeRuntimeFile(record: RuntimeRecord, deps: RuntimeDeps = {}): string {
  const dir = runtimeDir(deps)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const file = join(dir, `${record.pid}.json`)
  rmSync(file, { force: true }) // a stale file of a reused pid may have other permissions
  writeFileSync(file, `${JSON.stringify(record)}\n`, { mode: 0o600, flag: 'wx' })
  return file
}

export function removeRuntimeFile(file: string): void {
  rmSync(file, { force: true })
}

/** Status API addresses of live agent processes running `config`. */
export function findRuntimeAddresses(config: string, deps: RuntimeDeps = {}): Address[] {
  const dir = runtimeDir(deps)
  const alive = deps.isAlive ?? pidAlive
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return []
  }
  const out: Address[] = []
  for (const name of names.sort()) {
    const m = /^([1-9]\d{0,9})\.json$/.exec(name)
    if (m === null) continue
    const pid = Number(m[1])
    if (!alive(pid)) {
      rmSync(join(dir, name), { force: true })
      continue
    }
    const record = readRecord(join(dir, name))
    if (record === null || record.pid !== pid || record.config !== config) continue
    try {
      out.push(parseAddress(record.inspect))
    } catch {
      // not an address: skip
    }
  }
  return out
}

function readRecord(file: string): RuntimeRecord | null {
  try {
    const value = JSON.parse(readFileSync(file, 'utf8')) as Partial<RuntimeRecord>
    if (typeof value.pid !== 'number' || typeof value.config !== 'string' || typeof value.inspect !== 'string') return null
    return { pid: value.pid, config: value.config, inspect: value.inspect }
  } catch {
    return null
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
