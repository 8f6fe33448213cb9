// `npm run bench` as an instrument: the report from a fixture of raw rounds (medians, per-round
// ratios, target verdicts, the chart), the real bench in quick mode on two workloads, and the
// preflight line for a missing Debian package.
import { execFile } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ROOT } from './harness/processes.js'
import { loadMemoryRows } from '../bench/memory-rows.js'
import { EXIT_MISSING_PACKAGE, findOnPath, preflight } from '../bench/preflight.js'
import { renderMarkdown } from '../bench/report-md.js'
import { renderSvg } from '../bench/report-svg.js'
import type { BenchResult, Column, MemoryRow, Round } from '../bench/result.js'
import { settingsFrom } from '../bench/settings.js'
import { summarise } from '../bench/summary.js'
import { judgeTargets } from '../bench/targets.js'

const RUN = join(ROOT, 'test/bench/run.ts')
const fixture = JSON.parse(readFileSync(join(ROOT, 'test/e2e/fixtures/bench-rounds.json'), 'utf8')) as { columns: Column[]; rounds: Round[]; memory: MemoryRow[] }

function runBench(env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import=tsx', '--conditions=porchlight-source', RUN], { cwd: ROOT, env, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0
      resolve({ code, stdout, stderr })
    })
  })
}

// The quick bench is the slow part (~15 s): it starts at once and runs while the other tests do.
const quickOut = mkdtempSync(join(tmpdir(), 'porchlight-bench-smoke-'))
t.teardown(() => rmSync(quickOut, { recursive: true, force: true }))
const quickRun = findOnPath('wrk', process.env)
  ? runBench({ ...process.env, BENCH_QUICK: '1', BENCH_WORKLOADS: 'rps50,newconn,memory', BENCH_COLUMNS: 'porchlight', BENCH_OUT: quickOut, BENCH_MEMORY_MODULE: join(ROOT, 'test/e2e/fixtures/bench-memory.ts') }, 50_000)
  : null

function fixtureResult(): BenchResult {
  const medians = summarise(fixture.rounds, fixture.columns)
  return {
    date: '2026-12-03T10:00:00.000Z', command: 'npm run bench', quick: false, seconds: 600,
    machine: { nproc: 2, cpu: 'test cpu', node: 'v20.0.0', loadavg: [1.25, 3.5] }, tools: { wrk: 'wrk 4.1.0', openssh: 'OpenSSH_9.2p1' },
    skipped: {}, settings: settingsFrom({}, ROOT) as unknown as Record<string, unknown>, columns: fixture.columns,
    workloads: ['rps50'], rounds: fixture.rounds, memory: fixture.memory, medians, targets: judgeTargets(medians, fixture.memory),
  }
}

t.test('the report from fixed rounds: medians, per-round ratios, targets met and missed, the chart', async t => {
  const r = fixtureResult()
  // Ratios are medians of the per-round ratios (0.2, 0.4, 0.3), not the ratio of the medians (2400/10000).
  t.equal(r.medians.porchlight?.['rps50'], 2400)
  t.equal(r.medians.porchlight?.['rps50VsDirect'], 0.3)
  t.equal(r.medians.porchlight?.['rps50VsSshN'], 3)
  t.equal(r.medians.porchlight?.['addedP50Us'], 150)
  t.equal(Math.round(r.medians.porchlight!['addedP99Us']!), 550)
  t.equal(Math.round(r.medians.porchlight!['bulkMBsVsDirect']! * 1e4) / 1e4, 0.6667)
  const md = renderMarkdown(r)
  t.match(md, '| GET 1 KiB, 50 conns: req/s | 10000 | 2400 | 1000 |')
  t.match(md, '| &nbsp;&nbsp;× direct | 1.00 | 0.30 | 0.10 |')
  t.match(md, '| &nbsp;&nbsp;added p50 µs over direct | – | 150 | 220 |')
  t.match(md, '| relay + agent CPU per GET 1 KiB, fixed rate | ≤ 60 µs | 100.0 µs (ssh -N -R 36.0 µs) | **missed**; stretch ≤ 36 µs (OpenSSH\'s): **missed** |')
  t.match(md, '| GET 1 KiB req/s, 50 conns | ≥ 0.30× direct and ≥ 3× ssh -N -R | 0.30× direct, 3.00× ssh -N -R, –× ssh -tt -R | **met**; stretch ≥ ssh -tt -R: not measured |')
  t.match(md, '| p99, GET 1 KiB, 50 conns | ≤ 5 ms | 5.00 ms (direct 1.00 ms) | **met** |')
  t.match(md, '| GET 10 MB at 4 conns | ≥ 0.6× direct and ≥ 1.5× ssh -N -R; ≤ 1 ms CPU per MiB | 0.67× direct, 2.50× ssh -N -R, 0.90 ms/MiB | **met** |')
  t.match(md, '| added latency, one request at a time | p50 ≤ 150 µs over direct | p50 +150 µs, p99 +550 µs | **met** |')
  t.match(md, '| new connection per request | ≥ 1.5× ssh -N -R | 2.00× ssh -N -R (900 req/s) | **met** |')
  t.match(md, '| RSS idle, agent / relay | ≤ 55 / ≤ 65 MiB; relay + ≤ 100 KiB per idle agent (1,000 agents) | 50.5 / 70.5 MiB; +90.0 KiB per idle agent | **missed** |')
  t.match(md, '| 10,000 concurrent streams on one agent | all complete | 10000 of 10000 | **met** |')
  t.match(md, '| relay RSS idle, MiB | 70.5 |')
  t.match(md, '(1-minute load average 1.3 at the start, 3.5 at the end, on 2 cores)')
  t.match(md, '![Throughput of each path as a multiple of direct, and CPU per request](benchmarks.svg)')
  t.notMatch(md, 'POST 1 MiB echo', 'rows no round measured are left out')
  const behind = judgeTargets({ ...r.medians, porchlight: { ...r.medians.porchlight, cpuAchievedRps: 1000 } }, null, 2000)[0]!
  t.equal(behind.measured, '100.0 µs (ssh -N -R 36.0 µs); Porchlight kept up with only 1000 of the 2000 req/s offered')
  t.equal(judgeTargets({ ...r.medians, porchlight: { ...r.medians.porchlight, cpuAchievedRps: 1990 } }, null, 2000)[0]!.measured, '100.0 µs (ssh -N -R 36.0 µs)')
  const svg = renderSvg(r)
  t.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/)
  t.match(svg, '<title>Porchlight, GET 1 KiB, 50 conns: 0.30× direct</title>')
  t.match(svg, '100.0 µs')
})

t.test('no memory rows: the table says why and the memory targets are not measured; failures are listed', async t => {
  const r = { ...fixtureResult(), memory: null, skipped: { memory: 'test/bench/memory.ts missing' }, failures: ['tcp via sshN (round 2): 3 of 4 bytes arrived'] }
  r.targets = judgeTargets(r.medians, null)
  const md = renderMarkdown(r)
  t.match(md, 'Failed in this run (left out of the medians): tcp via sshN (round 2): 3 of 4 bytes arrived.')
  t.match(md, 'Not measured: test/bench/memory.ts missing.')
  t.match(md, '| RSS during a 1 GiB transfer | ≤ idle + 64 MiB on both sides | relay +– MiB, agent +– MiB | not measured |')
})

t.test('memory rows: skipped with the reason when memory.ts is missing, loaded with quick passed through when present', async t => {
  t.same(await loadMemoryRows(join(t.testdir({}), 'memory.ts'), 'test/bench/memory.ts', false), { rows: null, skipped: 'test/bench/memory.ts missing' })
  const loaded = await loadMemoryRows(join(ROOT, 'test/e2e/fixtures/bench-memory.ts'), 'fixture', true)
  t.same(loaded.rows?.find((r) => r.key === 'streamsOffered'), { key: 'streamsOffered', value: 100 })
})

t.test('preflight: wrk missing stops the bench with exit 2 and one line naming the package', async t => {
  const empty = t.testdir({})
  const res = await runBench({ ...process.env, PATH: empty }, 20_000)
  t.equal(res.code, EXIT_MISSING_PACKAGE)
  t.equal(res.stderr, 'bench: wrk not found on PATH: install the Debian package wrk (apt-get install -y wrk)\n')
  t.equal(res.stdout, '')
})

t.test('a typo in a BENCH_ setting is one line and exit 2', async t => {
  const res = await runBench({ ...process.env, BENCH_WORKLOADS: 'rps50,nope' }, 20_000)
  t.equal(res.code, 2)
  t.equal(res.stderr, 'bench: BENCH_WORKLOADS: unknown nope (known: rps50, one, bulk, post, newconn, cpu, ws, tcp, memory)\n')
  t.throws(() => settingsFrom({ BENCH_ROUNDS: '0' }, ROOT), { message: 'BENCH_ROUNDS: "0" is not a whole number from 1 to 20' })
  t.equal(settingsFrom({ BENCH_RATE: '1500' }, ROOT).fixedRate.rate, 1500)
})

t.test('preflight: OpenSSH missing only skips the ssh columns, naming the package', async t => {
  const dir = t.testdir({})
  for (const name of ['wrk', 'sshd']) {
    writeFileSync(join(dir, name), '#!/bin/sh\nexit 0\n')
    chmodSync(join(dir, name), 0o755)
  }
  const p = preflight({ PATH: dir }, true)
  t.equal(p.fatal, null)
  t.equal(p.sshd, join(dir, 'sshd'))
  t.equal(p.sshSkip, 'ssh or ssh-keygen not found: install the Debian package openssh-client (apt-get install -y openssh-client)')
  t.equal(preflight({ PATH: dir }, false).sshSkip, 'ssh or ssh-keygen not found: install the Debian package openssh-client (apt-get install -y openssh-client)')
  mkdirSync(join(dir, 'more'))
  for (const name of ['ssh', 'ssh-keygen']) {
    writeFileSync(join(dir, 'more', name), '#!/bin/sh\nexit 0\n')
    chmodSync(join(dir, 'more', name), 0o755)
  }
  t.equal(preflight({ PATH: `${dir}:${join(dir, 'more')}` }, false).sshSkip, 'sshd needs root here (privilege separation): run the bench as root')
  t.equal(preflight({ PATH: `${dir}:${join(dir, 'more')}` }, true).sshSkip, null)
})

t.test('quick mode, two workloads and memory, direct and Porchlight: real numbers and a report', {
  skip: quickRun ? false : 'wrk is not installed (apt-get install -y wrk)',
  timeout: 60_000,
}, async t => {
  const res = await quickRun!
  const out = quickOut
  t.equal(res.code, 0, res.stderr)
  const json = JSON.parse(readFileSync(join(out, 'benchmarks.json'), 'utf8')) as BenchResult
  t.same(json.columns, ['direct', 'porchlight'])
  t.equal(json.rounds.length, 1)
  // Quick mode skips the warm-up and a cold path on a loaded machine can answer only a few dozen
  // requests in its first second: the rates must be real (answered, no errors), not fast.
  for (const c of json.columns) {
    const m = json.rounds[0]![c]!
    t.ok(m['rps50']! > 0, `${c}: GET 1 KiB at 50 conns answered (${m['rps50']} req/s)`)
    t.ok(m['newConnRps']! > 0, `${c}: a new connection per request answered (${m['newConnRps']} req/s)`)
    t.equal(m['errors'], 0, `${c}: no wrk errors`)
  }
  // One round: the ratio is exactly that round's ratio.
  const round = json.rounds[0]!
  t.equal(json.medians.porchlight?.['rps50VsDirect'], round.porchlight!['rps50']! / round.direct!['rps50']!)
  t.equal(json.medians.porchlight?.['newConnRpsVsDirect'], round.porchlight!['newConnRps']! / round.direct!['newConnRps']!)
  const md = readFileSync(join(out, 'benchmarks.md'), 'utf8')
  t.match(md, '| measure | direct | Porchlight |\n')
  t.match(md, /\| GET 1 KiB, 50 conns: req\/s \| \d+ \| \d+ \|\n/)
  t.match(md, /\| New connection per request, 50 conns: req\/s \| \d+ \| \d+ \|\n/)
  t.match(md, '**quick mode**')
  t.match(md, '| relay + agent CPU per GET 1 KiB, fixed rate | ≤ 60 µs | – µs (ssh -N -R – µs) | not measured; stretch ≤ 36 µs (OpenSSH\'s): not measured |')
  t.match(md, '| concurrent streams on one agent: offered | 100 |', 'memory rows, measured in quick mode')
  t.match(md, '| 10,000 concurrent streams on one agent | all complete | 100 of 100 | **missed** |', 'a quick run offers fewer than 10,000')
  t.same(json.memory?.find((r) => r.key === 'relayIdleMiB'), { key: 'relayIdleMiB', value: 61.5 })
  t.match(readFileSync(join(out, 'benchmarks.svg'), 'utf8'), '<title>Porchlight, GET 1 KiB, 50 conns:')
})
