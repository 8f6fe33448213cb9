// Regenerates benchmarks.md and benchmarks.svg from a benchmarks.json (after a change to the
// report, without running the bench again): medians and verdicts are derived afresh from the rounds.
//   node --import=tsx test/bench/render.ts [docs/benchmarks.json]
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { BenchResult } from './result.js'
import { writeOutputs } from './run.js'
import { summarise } from './summary.js'
import { judgeTargets } from './targets.js'

export function rederive(r: BenchResult): BenchResult {
  const medians = summarise(r.rounds, r.columns)
  const rate = (r.settings as { fixedRate?: { rate: number } }).fixedRate?.rate
  return { ...r, medians, targets: judgeTargets(medians, r.memory, r.workloads.includes('cpu') ? rate : undefined) }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const file = resolve(process.argv[2] ?? 'docs/benchmarks.json')
  writeOutputs(rederive(JSON.parse(readFileSync(file, 'utf8')) as BenchResult), dirname(file))
  process.stdout.write(`wrote benchmarks.json, benchmarks.md and benchmarks.svg in ${dirname(file)}\n`)
}
