// Issue 11's target table, judged against one run: each target with what was measured and met or
// missed (null when this run did not measure it).
import type { Column, MemoryRow, Measures, TargetVerdict } from './result.js'

type Medians = Partial<Record<Column, Measures>>

function v(m: Medians, c: Column, key: string): number {
  return m[c]?.[key] ?? NaN
}

function fmt(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '–'
}

/** "+12" / "−3": a difference over direct, signed. */
function signed(x: number, digits: number): string {
  return Number.isFinite(x) ? `${x < 0 ? '−' : '+'}${Math.abs(x).toFixed(digits)}` : '–'
}

/** All must hold; any unmeasured makes the verdict unmeasured. */
function all(...checks: Array<[number, (x: number) => boolean]>): boolean | null {
  if (checks.some(([x]) => !Number.isFinite(x))) return null
  return checks.every(([x, ok]) => ok(x))
}

/** `offeredRate`: the fixed rate offered, so a path that fell behind it is named in the CPU row. */
export function judgeTargets(m: Medians, memory: MemoryRow[] | null, offeredRate?: number): TargetVerdict[] {
  const mem = (key: string): number => memory?.find((r) => r.key === key)?.value ?? NaN
  const cpu = v(m, 'porchlight', 'cpuUsPerRequest')
  const achieved = v(m, 'porchlight', 'cpuAchievedRps')
  const behind = offeredRate !== undefined && achieved < 0.95 * offeredRate ? `; Porchlight kept up with only ${fmt(achieved, 0)} of the ${offeredRate} req/s offered` : ''
  const sshCpu = v(m, 'sshN', 'cpuUsPerRequest')
  const rpsD = v(m, 'porchlight', 'rps50VsDirect')
  const rpsS = v(m, 'porchlight', 'rps50VsSshN')
  const rpsTT = v(m, 'porchlight', 'rps50VsSshTT')
  const p99 = v(m, 'porchlight', 'p99Ms50')
  const added = v(m, 'porchlight', 'addedP50Us')
  const bulkD = v(m, 'porchlight', 'bulkMBsVsDirect')
  const bulkS = v(m, 'porchlight', 'bulkMBsVsSshN')
  const bulkCpu = v(m, 'porchlight', 'bulkCpuMsPerMiB')
  const conn = v(m, 'porchlight', 'newConnRpsVsSshN')
  const relayIdle = mem('relayIdleMiB')
  const agentIdle = mem('agentIdleMiB')
  const perAgent = mem('relayPerIdleAgentKiB')
  const relayPeak = mem('relayPeakOverIdleMiB')
  const agentPeak = mem('agentPeakOverIdleMiB')
  const done = mem('streamsCompleted')
  const offered = mem('streamsOffered')
  return [
    {
      measure: 'relay + agent CPU per GET 1 KiB, fixed rate',
      target: '≤ 60 µs',
      measured: `${fmt(cpu, 1)} µs (ssh -N -R ${fmt(sshCpu, 1)} µs)${behind}`,
      met: all([cpu, (x) => x <= 60]),
      stretch: { target: '≤ 36 µs (OpenSSH\'s)', met: all([cpu, (x) => x <= 36]) },
    },
    {
      measure: 'GET 1 KiB req/s, 50 conns',
      target: '≥ 0.30× direct and ≥ 3× ssh -N -R',
      measured: `${fmt(rpsD, 2)}× direct, ${fmt(rpsS, 2)}× ssh -N -R, ${fmt(rpsTT, 2)}× ssh -tt -R`,
      met: all([rpsD, (x) => x >= 0.3], [rpsS, (x) => x >= 3]),
      stretch: { target: '≥ ssh -tt -R', met: all([rpsTT, (x) => x >= 1]) },
    },
    {
      measure: 'p99, GET 1 KiB, 50 conns',
      target: '≤ 5 ms',
      measured: `${fmt(p99, 2)} ms (direct ${fmt(v(m, 'direct', 'p99Ms50'), 2)} ms)`,
      met: all([p99, (x) => x <= 5]),
    },
    {
      measure: 'added latency, one request at a time',
      target: 'p50 ≤ 150 µs over direct',
      measured: `p50 ${signed(added, 0)} µs, p99 ${signed(v(m, 'porchlight', 'addedP99Us'), 0)} µs`,
      met: all([added, (x) => x <= 150]),
    },
    {
      measure: 'GET 10 MB at 4 conns',
      target: '≥ 0.6× direct and ≥ 1.5× ssh -N -R; ≤ 1 ms CPU per MiB',
      measured: `${fmt(bulkD, 2)}× direct, ${fmt(bulkS, 2)}× ssh -N -R, ${fmt(bulkCpu, 2)} ms/MiB`,
      met: all([bulkD, (x) => x >= 0.6], [bulkS, (x) => x >= 1.5], [bulkCpu, (x) => x <= 1]),
    },
    {
      measure: 'new connection per request',
      target: '≥ 1.5× ssh -N -R',
      measured: `${fmt(conn, 2)}× ssh -N -R (${fmt(v(m, 'porchlight', 'newConnRps'), 0)} req/s)`,
      met: all([conn, (x) => x >= 1.5]),
    },
    {
      measure: 'RSS idle, agent / relay',
      target: '≤ 55 / ≤ 65 MiB; relay + ≤ 100 KiB per idle agent (1,000 agents)',
      measured: `${fmt(agentIdle, 1)} / ${fmt(relayIdle, 1)} MiB; +${fmt(perAgent, 1)} KiB per idle agent`,
      met: all([agentIdle, (x) => x <= 55], [relayIdle, (x) => x <= 65], [perAgent, (x) => x <= 100]),
    },
    {
      measure: 'RSS during a 1 GiB transfer',
      target: '≤ idle + 64 MiB on both sides',
      measured: `relay +${fmt(relayPeak, 1)} MiB, agent +${fmt(agentPeak, 1)} MiB`,
      met: all([relayPeak, (x) => x <= 64], [agentPeak, (x) => x <= 64]),
    },
    {
      measure: '10,000 concurrent streams on one agent',
      target: 'all complete',
      measured: `${fmt(done, 0)} of ${fmt(offered, 0)}`,
      met: all([done, (x) => x === offered], [offered, (x) => x >= 10_000]),
    },
  ]
}
