// The shape of docs/benchmarks.json: what one `npm run bench` measured (every round, raw) and the
// medians, ratios and target verdicts derived from it (summary.ts, targets.ts).

export type Column = 'direct' | 'porchlight' | 'sshN' | 'sshTT' | 'floor' | 'oldFloor'

export const COLUMNS: Column[] = ['direct', 'porchlight', 'sshN', 'sshTT', 'floor', 'oldFloor']

export const LABEL: Record<Column, string> = {
  direct: 'direct',
  porchlight: 'Porchlight',
  sshN: 'ssh -N -R',
  sshTT: 'ssh -tt -R',
  floor: 'design floor',
  oldFloor: 'old floor (stream per request)',
}

/** One column's measures in one round, by key (see MEASURES in report-md.ts); a missing key was not measured. */
export type Measures = Record<string, number>

/** One round: every column measured, alternating. */
export type Round = Partial<Record<Column, Measures>>

export interface MemoryRow { key: string; value: number }

export interface TargetVerdict {
  measure: string
  target: string
  /** What this run measured, as text (several numbers for a compound target). */
  measured: string
  /** null: not measured in this run (a column or workload skipped). */
  met: boolean | null
  stretch?: { target: string; met: boolean | null }
}

export interface BenchResult {
  date: string
  command: string
  quick: boolean
  seconds: number
  /** loadavg: the 1-minute load average at the start and at the end (other work on the machine). */
  machine: { nproc: number; cpu: string; node: string; loadavg?: [number, number] }
  tools: { wrk: string; openssh: string | null }
  /** Why a column or section did not run, by name (ssh, memory, ...). */
  skipped: Record<string, string>
  settings: Record<string, unknown>
  columns: Column[]
  workloads: string[]
  rounds: Round[]
  /** Measurements that failed (the run went on without them), one line each. */
  failures?: string[]
  memory: MemoryRow[] | null
  /** Derived: per column, the median of each measure and of each per-round ratio. */
  medians: Partial<Record<Column, Measures>>
  targets: TargetVerdict[]
}
