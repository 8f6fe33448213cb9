// Runs Debian's `wrk` (one thread, so it takes as little of a 2-core machine as it can) and parses
// its summary: req/s, the --latency percentiles, bytes read.
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface WrkResult {
  rps: number
  p50Ms: number
  p99Ms: number
  requests: number
  bytes: number
  seconds: number
  /** Socket errors (connect/read/write/timeout) plus non-2xx/3xx responses. */
  errors: number
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const UNIT_BYTES: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 }

function ms(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text)
  if (!m) throw new Error(`wrk: cannot read a duration from "${text}"`)
  return Number(m[1]) * UNIT_MS[m[2]!]!
}

export function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m), ([\d.]+)(B|KB|MB|GB|TB) read/.exec(out)
  const p50 = /^\s+50%\s+(\S+)/m.exec(out)
  const p99 = /^\s+99%\s+(\S+)/m.exec(out)
  if (!rps || !total || !p50 || !p99) throw new Error(`wrk: unexpected output:\n${out}`)
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out)
  const errors = (sock ? sock.slice(1, 5).reduce((n, v) => n + Number(v), 0) : 0) + (non2xx ? Number(non2xx[1]) : 0)
  return {
    rps: Number(rps[1]),
    p50Ms: ms(p50[1]!),
    p99Ms: ms(p99[1]!),
    requests: Number(total[1]),
    seconds: ms(`${total[2]}${total[3]}`) / 1000,
    bytes: Number(total[4]) * UNIT_BYTES[total[5]!]!,
    errors,
  }
}

export interface WrkOptions {
  port: number
  path: string
  connections: number
  durationS: number
  host: string
  /** Extra request headers, e.g. 'Connection: close' (a new connection per request). */
  headers?: string[]
  /** A wrk Lua script (postScript() writes one). */
  script?: string
}

/** Writes a wrk Lua script into `dir` that POSTs `bytes` bytes; returns its path. */
export function postScript(dir: string, bytes: number): string {
  const file = join(dir, `post-${bytes}.lua`)
  writeFileSync(file, `wrk.method = "POST"\nwrk.body = string.rep("z", ${bytes})\nwrk.headers["Content-Type"] = "application/octet-stream"\n`)
  return file
}

export function runWrk(o: WrkOptions): Promise<WrkResult> {
  const args = ['-t1', `-c${o.connections}`, `-d${o.durationS}s`, '--timeout', '10s', '--latency', '-H', `Host: ${o.host}`]
  for (const h of o.headers ?? []) args.push('-H', h)
  if (o.script) args.push('-s', o.script)
  args.push(`http://127.0.0.1:${o.port}${o.path}`)
  return new Promise((resolve, reject) => {
    execFile('wrk', args, { timeout: (o.durationS + 20) * 1000 }, (err, stdout, stderr) => {
      if (err) { reject(new Error(`wrk ${args.join(' ')}: ${err.message}\n${stderr}`)); return }
      try { resolve(parseWrk(stdout)) } catch (e) { reject(e as Error) }
    })
  })
}
