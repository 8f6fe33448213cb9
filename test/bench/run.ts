// `npm run bench` (issue 11): direct, Porchlight, `ssh -N -R`, `ssh -tt -R` and the design floors
// side by side, alternating, medians of the rounds; then memory (test/bench/memory.ts, if present).
// Writes benchmarks.json, benchmarks.md and benchmarks.svg (docs/ unless BENCH_OUT or BENCH_QUICK).
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ROOT } from '../e2e/harness/processes.js'
import { BenchScope } from './bench-scope.js'
import { loadMemoryRows, type MemoryOutcome } from './memory-rows.js'
import { startPaths } from './paths.js'
import { EXIT_MISSING_PACKAGE, preflight } from './preflight.js'
import { renderMarkdown } from './report-md.js'
import { renderSvg } from './report-svg.js'
import type { BenchResult, MemoryRow } from './result.js'
import { settingsFrom, type Settings } from './settings.js'
import { runRounds, warmUp } from './side-by-side.js'
import { summarise } from './summary.js'
import { judgeTargets } from './targets.js'
import { postScript } from './wrk.js'

const MEMORY_BENCH = join(ROOT, 'test/bench/memory.ts')
/** The env settings that change what is measured, quoted with the command in the outputs. */
const COMMAND_ENV = ['BENCH_QUICK', 'BENCH_WORKLOADS', 'BENCH_COLUMNS', 'BENCH_ROUNDS', 'BENCH_RATE', 'PORCHLIGHT_E2E_RELAY_BIN', 'PORCHLIGHT_E2E_AGENT_BIN']

function say(line: string): void { process.stdout.write(`${line}\n`) }

function version(cmd: string, args: string[]): string {
  // `ssh -V` prints on stderr, `wrk --version` exits 1: take the first line of either stream.
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0]!.trim()
}

/** Memory runs last and gets what is left of the run's bound: past that it is skipped, not the whole report lost. */
async function measureMemory(settings: Settings, skipped: Record<string, string>, leftMs: number): Promise<MemoryRow[] | null> {
  if (!settings.workloads.includes('memory')) return null
  const file = process.env['BENCH_MEMORY_MODULE'] ?? MEMORY_BENCH
  const started = Date.now()
  let timer: NodeJS.Timeout | undefined
  const outOfTime = new Promise<MemoryOutcome>((resolve) => {
    timer = setTimeout(() => resolve({ rows: null, skipped: `did not finish in the ${Math.round(leftMs / 1000)} s left of the run's bound` }), Math.max(0, leftMs))
  })
  const outcome = await Promise.race([loadMemoryRows(file, file === MEMORY_BENCH ? 'test/bench/memory.ts' : file, settings.quick), outOfTime])
  clearTimeout(timer)
  if (outcome.skipped !== null) {
    say(`memory: skipped (${outcome.skipped})`)
    skipped['memory'] = outcome.skipped
    return null
  }
  say(`  memory: ${((Date.now() - started) / 1000).toFixed(1)} s`)
  return outcome.rows
}

export function writeOutputs(result: BenchResult, outDir: string): void {
  mkdirSync(outDir, { recursive: true })
  writeFileSync(join(outDir, 'benchmarks.json'), `${JSON.stringify(result, null, 2)}\n`)
  writeFileSync(join(outDir, 'benchmarks.md'), renderMarkdown(result))
  writeFileSync(join(outDir, 'benchmarks.svg'), renderSvg(result))
}

async function main(): Promise<number> {
  let settings: Settings
  try {
    settings = settingsFrom(process.env, ROOT)
  } catch (err) {
    // A typo in a BENCH_* setting: one line, exit 2 like any usage error.
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`)
    return 2
  }
  const check = preflight(process.env, process.getuid?.() === 0)
  if (check.fatal) { process.stderr.write(`${check.fatal}\n`); return EXIT_MISSING_PACKAGE }
  const skipped: Record<string, string> = {}
  if (check.sshSkip) {
    say(`ssh -N -R / ssh -tt -R columns: skipped (${check.sshSkip})`)
    skipped['ssh columns'] = check.sshSkip
  }
  const scope = new BenchScope()
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench: still running after ${settings.watchdogMs / 1000} s, giving up\n`)
    scope.fail()
    void scope.close().finally(() => process.exit(1))
  }, settings.watchdogMs)
  watchdog.unref()
  const started = Date.now()
  const loadAtStart = loadavg()[0]!
  try {
    const paths = await startPaths(scope, settings.columns, check.sshSkip ? null : check.sshd, settings.ws.connections)
    const columns = paths.map((p) => p.column)
    say(`side by side: ${columns.join(', ')}; ${settings.rounds} round(s); workloads ${settings.workloads.join(', ')}${settings.quick ? ' (quick)' : ''}`)
    // Quick mode is for tests: its numbers are not comparable anyway, so it skips the warm-up.
    if (!settings.quick) await warmUp(paths)
    const failures: string[] = []
    const rounds = await runRounds(paths, { settings, postScript: postScript(scope.testdir(), settings.postBytes), say, failures })
    await scope.close()
    // 20 s kept back for the report and teardown.
    const memory = await measureMemory(settings, skipped, started + settings.watchdogMs - 20_000 - Date.now())
    const medians = summarise(rounds, columns)
    const command = `${COMMAND_ENV.filter((k) => process.env[k]).map((k) => `${k}=${process.env[k]} `).join('')}npm run bench`
    const result: BenchResult = {
      date: new Date().toISOString(),
      command,
      quick: settings.quick,
      seconds: Math.round((Date.now() - started) / 1000),
      machine: { nproc: cpus().length, cpu: cpus()[0]?.model ?? '?', node: process.version, loadavg: [loadAtStart, loadavg()[0]!] },
      tools: { wrk: version('wrk', ['--version']), openssh: check.sshSkip ? null : version('ssh', ['-V']) },
      skipped,
      settings: { ...settings, outDir: undefined },
      columns,
      workloads: settings.workloads,
      rounds,
      failures,
      memory,
      medians,
      targets: judgeTargets(medians, memory, settings.workloads.includes('cpu') ? settings.fixedRate.rate : undefined),
    }
    writeOutputs(result, settings.outDir)
    for (const t of result.targets) say(`  ${t.met === null ? 'not measured' : t.met ? 'met   ' : 'MISSED'}  ${t.measure}: ${t.measured} (target ${t.target})`)
    say(`wrote benchmarks.json, benchmarks.md and benchmarks.svg in ${settings.outDir} (${result.seconds} s)`)
    return 0
  } catch (err) {
    scope.fail()
    throw err
  } finally {
    clearTimeout(watchdog)
    await scope.close()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then((code) => process.exit(code), (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    process.exit(1)
  })
}
