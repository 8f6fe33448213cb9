// The side-by-side bench of issue 11 (measurement only): direct, Porchlight, OpenSSH's `ssh -N -R`
// and `ssh -tt -R`, and the design floor, alternating, ROUNDS rounds, medians. Load comes from
// `wrk` (one thread); CPU per request from /proc at a fixed offered rate. Writes
// test/bench/results/latest.json and regenerates docs/benchmarks.md.
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { startAgent, startRelay, ROOT } from '../e2e/harness/processes.js'
import { BenchScope } from './bench-scope.js'
import { fixedRate, withDescendants, type FixedRateResult } from './cpu.js'
import { startFloorProcesses } from './floor/start.js'
import { sshMissing, startSshd } from './ssh.js'
import { runWrk, wrkMissing, type WrkResult } from './wrk.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3)
const HOST = 'bench.localhost'
const SMALL = '/1k'
const BULK_BYTES = 10_000_000
const W = {
  rps: { connections: 50, durationS: 4 },
  one: { connections: 1, durationS: 3 },
  bulk: { connections: 4, durationS: 3 },
}
const RATE = Number(process.env['BENCH_RATE'] ?? 1000)
const RATE_S = 5
const RATE_SOCKETS = 8
const WATCHDOG_MS = 420_000
/** The command as run (the env settings that change what is measured), for the JSON and the doc. */
const COMMAND = `${['BENCH_ONLY', 'BENCH_ROUNDS', 'BENCH_RATE'].filter((k) => process.env[k]).map((k) => `${k}=${process.env[k]} `).join('')}npm run bench`

type Column = 'direct' | 'porchlight' | 'sshN' | 'sshTT' | 'floor'
const LABEL: Record<Column, string> = { direct: 'direct', porchlight: 'Porchlight', sshN: 'ssh -N -R', sshTT: 'ssh -tt -R', floor: 'design floor' }

interface Target { column: Column; port: number; pids: () => number[] }
interface Round { rps: WrkResult; one: WrkResult; bulk: WrkResult }

function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return NaN
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2
}

async function startOrigin(): Promise<{ port: number; close(): Promise<void> }> {
  const worker = new Worker(join(HERE, 'origin-worker.mjs'))
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', (msg: { port: number }) => resolve(msg.port))
    worker.once('error', reject)
  })
  return { port, close: async () => { worker.postMessage('close'); await worker.terminate() } }
}

function say(line: string): void { process.stdout.write(`${line}\n`) }

function version(cmd: string, args: string[]): string {
  // `ssh -V` prints on stderr, `wrk --version` exits 1: take the first line of either stream.
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0]!.trim()
}

export async function runSideBySide(): Promise<void> {
  const missingWrk = wrkMissing()
  if (missingWrk) { say(`\nside-by-side bench: skipped (wrk not found: apt-get install -y ${missingWrk})`); return }
  const noSsh = sshMissing()
  const scope = new BenchScope()
  const watchdog = setTimeout(() => {
    process.stderr.write(`side-by-side bench: still running after ${WATCHDOG_MS} ms, giving up\n`)
    scope.fail()
    void scope.close().finally(() => process.exit(1))
  }, WATCHDOG_MS)
  watchdog.unref()
  const started = Date.now()
  try {
    const origin = await startOrigin()
    scope.teardown(() => origin.close())
    const relay = await startRelay(scope, { agents: { laptop: { hosts: ['*.localhost'] } } })
    const agent = await startAgent(scope, relay, { tunnels: [{ http: 'bench', to: `http://127.0.0.1:${origin.port}` }] })
    const floor = await startFloorProcesses(scope, origin.port)
    const targets: Target[] = [
      { column: 'direct', port: origin.port, pids: () => [] },
      { column: 'porchlight', port: relay.publicPort, pids: () => [relay.current.pid, agent.pid] },
    ]
    if (noSsh) say(`ssh -N -R / ssh -tt -R columns: skipped (${noSsh})`)
    else {
      const sshd = await startSshd()
      scope.teardown(() => sshd.close())
      for (const [column, mode] of [['sshN', '-N'], ['sshTT', '-tt']] as const) {
        const fwd = await sshd.forward(origin.port, mode)
        // sshd's master and its per-connection processes, plus the ssh client.
        targets.push({ column, port: fwd.port, pids: () => [...withDescendants(sshd.pid), fwd.clientPid] })
      }
    }
    targets.push({ column: 'floor', port: floor.port, pids: () => floor.pids })
    const columns = targets.map((t) => t.column)
    say(`\nside by side (${columns.map((c) => LABEL[c]).join(', ')}), ${ROUNDS} rounds, wrk -t1; origin 127.0.0.1:${origin.port}, nproc ${cpus().length}`)

    for (const t of targets) await runWrk({ port: t.port, path: SMALL, host: HOST, connections: 50, durationS: 1 }) // JIT, pools
    const rounds: Array<Partial<Record<Column, Round>>> = []
    for (let i = 1; i <= ROUNDS; i++) {
      const round: Partial<Record<Column, Round>> = {}
      for (const t of targets) {
        const rps = await runWrk({ port: t.port, path: SMALL, host: HOST, ...W.rps })
        const one = await runWrk({ port: t.port, path: SMALL, host: HOST, ...W.one })
        const bulk = await runWrk({ port: t.port, path: `/bytes/${BULK_BYTES}`, host: HOST, ...W.bulk })
        round[t.column] = { rps, one, bulk }
      }
      rounds.push(round)
      say(`  round ${i}/${ROUNDS}: GET 1 KiB req/s ${columns.map((c) => `${LABEL[c]} ${round[c]!.rps.rps.toFixed(0)}`).join(', ')}`)
    }

    const cpuRounds: Array<Partial<Record<Column, FixedRateResult>>> = []
    for (let i = 1; i <= ROUNDS; i++) {
      const r: Partial<Record<Column, FixedRateResult>> = {}
      for (const t of targets.filter((x) => x.column !== 'direct')) {
        r[t.column] = await fixedRate({ port: t.port, host: HOST, path: SMALL, rate: RATE, durationS: RATE_S, sockets: RATE_SOCKETS, pids: t.pids })
      }
      cpuRounds.push(r)
      say(`  cpu round ${i}/${ROUNDS} at ${RATE} req/s: ${Object.entries(r).map(([c, x]) => `${LABEL[c as Column]} ${x.cpuUsPerRequest.toFixed(1)} µs/req (${x.completed}/${x.offered} in ${x.seconds.toFixed(1)} s)`).join(', ')}`)
    }

    const get = (c: Column, f: (r: Round) => number): number[] => rounds.map((r) => (r[c] ? f(r[c]!) : NaN))
    const perRound = (c: Column, base: Column, f: (r: Round) => number): number =>
      median(rounds.map((r) => (r[c] && r[base] ? f(r[c]!) / f(r[base]!) : NaN)))
    const mbs = (r: Round): number => r.bulk.bytes / 1e6 / r.bulk.seconds
    const medians: Record<string, Record<string, number>> = {}
    for (const c of columns) {
      const cpu = cpuRounds.map((r) => r[c])
      medians[c] = {
        rps50: median(get(c, (r) => r.rps.rps)),
        p50Ms50: median(get(c, (r) => r.rps.p50Ms)),
        p99Ms50: median(get(c, (r) => r.rps.p99Ms)),
        oneP50Ms: median(get(c, (r) => r.one.p50Ms)),
        oneP99Ms: median(get(c, (r) => r.one.p99Ms)),
        addedP50Us: c === 'direct' ? 0 : median(rounds.map((r) => (r[c] && r.direct ? (r[c]!.one.p50Ms - r.direct.one.p50Ms) * 1000 : NaN))),
        addedP99Us: c === 'direct' ? 0 : median(rounds.map((r) => (r[c] && r.direct ? (r[c]!.one.p99Ms - r.direct.one.p99Ms) * 1000 : NaN))),
        bulkMBs: median(get(c, mbs)),
        rpsVsDirect: perRound(c, 'direct', (r) => r.rps.rps),
        rpsVsSshN: columns.includes('sshN') ? perRound(c, 'sshN', (r) => r.rps.rps) : NaN,
        bulkVsDirect: perRound(c, 'direct', mbs),
        bulkVsSshN: columns.includes('sshN') ? perRound(c, 'sshN', mbs) : NaN,
        errors: rounds.reduce((n, r) => n + (r[c] ? r[c]!.rps.errors + r[c]!.one.errors + r[c]!.bulk.errors : 0), 0),
        cpuUsPerRequest: median(cpu.map((x) => x?.cpuUsPerRequest ?? NaN)),
        cpuCompletedShare: median(cpu.map((x) => (x ? x.completed / x.offered : NaN))),
        cpuAchievedRps: median(cpu.map((x) => x?.achievedRps ?? NaN)),
        cpuErrors: cpu.reduce((n, x) => n + (x?.errors ?? 0), 0),
      }
    }
    const result = {
      date: new Date().toISOString(),
      command: COMMAND,
      seconds: Math.round((Date.now() - started) / 1000),
      machine: { nproc: cpus().length, cpu: cpus()[0]?.model ?? '?', node: process.version },
      tools: { wrk: version('wrk', ['--version']), openssh: noSsh ? null : version('ssh', ['-V']) },
      skipped: noSsh ? { ssh: noSsh } : {},
      settings: { rounds: ROUNDS, workloads: W, bulkBytes: BULK_BYTES, fixedRate: { rate: RATE, seconds: RATE_S, sockets: RATE_SOCKETS } },
      columns,
      medians,
      rounds,
      cpuRounds,
    }
    mkdirSync(join(HERE, 'results'), { recursive: true })
    writeFileSync(join(HERE, 'results/latest.json'), `${JSON.stringify(result, null, 2)}\n`)
    const md = renderMarkdown(result)
    writeFileSync(join(ROOT, 'docs/benchmarks.md'), md)
    say(`\n${md.slice(md.indexOf('| measure'), md.indexOf('\n\n', md.indexOf('| measure')))}`)
    say('\nwrote test/bench/results/latest.json and docs/benchmarks.md')
  } catch (err) {
    scope.fail()
    throw err
  } finally {
    clearTimeout(watchdog)
    await scope.close()
  }
}

interface ResultShape {
  date: string; command: string; seconds: number
  machine: { nproc: number; cpu: string; node: string }
  tools: { wrk: string; openssh: string | null }
  skipped: { ssh?: string }
  settings: { rounds: number; fixedRate: { rate: number; seconds: number; sockets: number } }
  columns: Column[]
  medians: Record<string, Record<string, number>>
}

function renderMarkdown(r: ResultShape): string {
  const cols = r.columns
  const fmt = (v: number | undefined, digits: number): string => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits))
  const row = (name: string, key: string, digits: number, skip: Column[] = []): string =>
    `| ${name} | ${cols.map((c) => (skip.includes(c) ? '–' : fmt(r.medians[c]?.[key], digits))).join(' | ')} |`
  const lines = [
    '# Benchmarks: direct, Porchlight, `ssh -R` and the design floor, side by side',
    '',
    `<!-- Generated by test/bench/side-by-side.ts (\`${r.command}\`); do not edit by hand. -->`,
    '',
    `One run of \`${r.command}\` on ${r.date.slice(0, 10)}: ${r.machine.nproc} cores (\`nproc\`; ${r.machine.cpu}), Node ${r.machine.node},`,
    `${r.tools.wrk.split(' ').slice(0, 2).join(' ')}${r.tools.openssh ? `, ${r.tools.openssh.split(',')[0]}` : ''}. Everything (wrk, the origin, the relay and agent, sshd and ssh) shares`,
    'those cores on loopback, and the machine is shared and noisy: compare the ratios, which come from the same rounds, not the absolute numbers.',
    `The columns alternate within each round, ${r.settings.rounds} rounds; each cell is the median over the rounds, each ratio the median of the per-round ratios.`,
    '',
    `| measure | ${cols.map((c) => LABEL[c]).join(' | ')} |`,
    `|---|${cols.map(() => '---:').join('|')}|`,
    row('GET 1 KiB, 50 conns: req/s', 'rps50', 0),
    row('&nbsp;&nbsp;× direct', 'rpsVsDirect', 2),
    row('&nbsp;&nbsp;× ssh -N -R', 'rpsVsSshN', 2),
    row('&nbsp;&nbsp;p50 ms', 'p50Ms50', 2),
    row('&nbsp;&nbsp;p99 ms', 'p99Ms50', 2),
    row('GET 1 KiB, one connection: p50 ms', 'oneP50Ms', 3),
    row('&nbsp;&nbsp;p99 ms', 'oneP99Ms', 3),
    row('&nbsp;&nbsp;added p50 µs over direct', 'addedP50Us', 0, ['direct']),
    row('&nbsp;&nbsp;added p99 µs over direct', 'addedP99Us', 0, ['direct']),
    row('GET 10 MB, 4 conns: MB/s', 'bulkMBs', 0),
    row('&nbsp;&nbsp;× direct', 'bulkVsDirect', 2),
    row('&nbsp;&nbsp;× ssh -N -R', 'bulkVsSshN', 2),
    row(`CPU µs per GET 1 KiB at ${r.settings.fixedRate.rate} req/s (tunnel processes)`, 'cpuUsPerRequest', 1, ['direct']),
    row('&nbsp;&nbsp;share of offered requests completed', 'cpuCompletedShare', 3, ['direct']),
    row('&nbsp;&nbsp;achieved req/s (below the offered rate: the tunnel fell behind)', 'cpuAchievedRps', 0, ['direct']),
    row('errors (wrk socket errors + non-2xx, all rounds)', 'errors', 0),
    '',
    '## How each row is measured',
    '',
    '- **Load**: Debian\'s `wrk`, one thread (`wrk -t1 -cN -dS --latency`), which costs far less CPU than autocannon and leaves more of the cores to what is measured.',
    `  GET 1 KiB at 50 connections for ${W.rps.durationS} s (req/s, p50 and p99 from \`--latency\`), GET 1 KiB on one connection for ${W.one.durationS} s`,
    `  (added latency = the column's p50/p99 minus direct's in the same round), GET ${BULK_BYTES / 1e6} MB at 4 connections for ${W.bulk.durationS} s (MB/s = bytes read / time, 10^6 bytes).`,
    '- **direct**: wrk to the origin (`test/bench/origin-worker.mjs`). **Porchlight**: the built relay and agent (`packages/*/dist`), an HTTP tunnel to the same origin.',
    '- **ssh -N -R / ssh -tt -R**: the bench runs its own `sshd -D -f TEMPCONF -p PORT` on 127.0.0.1 with throwaway ed25519 host and user keys (`StrictModes no`, `UsePAM no`, `PidFile none`),',
    '  and `ssh -N -R 127.0.0.1:RPORT:127.0.0.1:ORIGIN` (or `ssh -tt -R ... \'exec sleep 86400\'`: a pty makes both ends treat the connection as interactive, which turns on TCP_NODELAY) with default ciphers; load goes to RPORT.',
    '- **design floor**: `test/bench/floor/` (the least a relay and agent must do per request under SECURITY.md rule 2).',
    `- **CPU per request**: a keep-alive Node client in the bench process offers ${r.settings.fixedRate.rate} GET 1 KiB per second for ${r.settings.fixedRate.seconds} s over ${r.settings.fixedRate.sockets} connections;`,
    '  utime + stime of the tunnel\'s processes is read from `/proc/PID/stat` before and after and divided by the requests completed.',
    '  Porchlight and the floor: relay + agent. ssh: the sshd master and its per-connection processes + the ssh client. The load client and origin are not counted.',
    '',
    `Raw numbers of every round: \`test/bench/results/latest.json\` (not committed). The run took ${r.seconds} s.`,
  ]
  if (r.skipped.ssh) lines.push('', `The ssh columns were skipped in this run: ${r.skipped.ssh}.`)
  return `${lines.join('\n')}\n`
}
