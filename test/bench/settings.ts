// What one `npm run bench` runs, from the environment. The full run is what docs/benchmarks.md
// quotes; BENCH_QUICK=1 shrinks every duration and count so a test can run it in seconds.
import { isAbsolute, join, resolve } from 'node:path'
import { COLUMNS, type Column } from './result.js'

export const WORKLOADS = ['rps50', 'one', 'bulk', 'post', 'newconn', 'cpu', 'ws', 'tcp', 'memory'] as const
export type Workload = (typeof WORKLOADS)[number]

export interface Settings {
  quick: boolean
  rounds: number
  workloads: Workload[]
  columns: Column[]
  /** Where benchmarks.json / .md / .svg are written. */
  outDir: string
  /** The whole run is cut off after this (exit 1), whatever hangs. */
  watchdogMs: number
  wrk: { rps50S: number; oneS: number; bulkS: number; postS: number; newConnS: number }
  bulkBytes: number
  postBytes: number
  fixedRate: { rate: number; seconds: number; sockets: number }
  ws: { connections: number; idleS: number; echoRounds: number; messageBytes: number }
  tcpBytes: number
}

/** Comma-separated names from `value`, each checked against `allowed` (a typo is an error, not a silent skip). */
function pick<T extends string>(name: string, value: string | undefined, allowed: readonly T[]): T[] {
  if (value === undefined || value.trim() === '') return [...allowed]
  const picked = value.split(',').map((s) => s.trim()).filter(Boolean)
  const bad = picked.filter((p) => !(allowed as readonly string[]).includes(p))
  if (bad.length > 0) throw new Error(`${name}: unknown ${bad.join(', ')} (known: ${allowed.join(', ')})`)
  return allowed.filter((a) => picked.includes(a))
}

/** A whole number from 1 to `max`, or `fallback` when unset. */
function count(name: string, value: string | undefined, fallback: number, max: number): number {
  if (value === undefined || value === '') return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`${name}: "${value}" is not a whole number from 1 to ${max}`)
  return n
}

export function settingsFrom(env: NodeJS.ProcessEnv, root: string): Settings {
  const quick = env['BENCH_QUICK'] === '1'
  const columns = pick('BENCH_COLUMNS', env['BENCH_COLUMNS'], COLUMNS)
  // Ratios need the direct column in every round.
  if (!columns.includes('direct')) columns.unshift('direct')
  const out = env['BENCH_OUT'] ?? (quick ? join(root, 'test/bench/results/quick') : join(root, 'docs'))
  return {
    quick,
    rounds: count('BENCH_ROUNDS', env['BENCH_ROUNDS'], quick ? 1 : 3, 20),
    workloads: pick('BENCH_WORKLOADS', env['BENCH_WORKLOADS'], WORKLOADS),
    columns,
    outDir: isAbsolute(out) ? out : resolve(root, out),
    watchdogMs: quick ? 120_000 : 690_000,
    wrk: quick
      ? { rps50S: 1, oneS: 1, bulkS: 1, postS: 1, newConnS: 1 }
      : { rps50S: 3, oneS: 2, bulkS: 2, postS: 2, newConnS: 2 },
    bulkBytes: 10_000_000,
    postBytes: 1_048_576,
    fixedRate: quick ? { rate: 200, seconds: 1, sockets: 4 } : { rate: count('BENCH_RATE', env['BENCH_RATE'], 2000, 20_000), seconds: 4, sockets: 8 },
    ws: quick ? { connections: 50, idleS: 0.5, echoRounds: 2, messageBytes: 64 } : { connections: 1000, idleS: 3, echoRounds: 5, messageBytes: 64 },
    tcpBytes: quick ? 4 * 1024 * 1024 : 100 * 1024 * 1024,
  }
}
