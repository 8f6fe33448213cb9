// Medians over the rounds. A ratio is the median of the per-round ratios (both numbers come from
// the same round, so a noisy round moves both), not the ratio of the medians.
import type { Column, Measures, Round } from './result.js'

/** Measures compared across columns as `<key>VsDirect`, `<key>VsSshN`, `<key>VsSshTT`. */
export const RATIO_KEYS = ['rps50', 'bulkMBs', 'postMBs', 'newConnRps', 'wsEchoPerS', 'tcpUpMBs', 'tcpDownMBs'] as const
const BASES: Array<[Column, string]> = [['direct', 'VsDirect'], ['sshN', 'VsSshN'], ['sshTT', 'VsSshTT']]

export function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return NaN
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2
}

function at(round: Round, column: Column, key: string): number {
  return round[column]?.[key] ?? NaN
}

export function summarise(rounds: Round[], columns: Column[]): Partial<Record<Column, Measures>> {
  const out: Partial<Record<Column, Measures>> = {}
  for (const c of columns) {
    const keys = new Set(rounds.flatMap((r) => Object.keys(r[c] ?? {})))
    const m: Measures = {}
    for (const k of keys) m[k] = median(rounds.map((r) => at(r, c, k)))
    for (const k of RATIO_KEYS) {
      if (!keys.has(k)) continue
      for (const [base, suffix] of BASES) {
        if (!columns.includes(base)) continue
        const v = median(rounds.map((r) => at(r, c, k) / at(r, base, k)))
        if (Number.isFinite(v)) m[`${k}${suffix}`] = v
      }
    }
    // Added latency: this column's one-at-a-time percentile minus direct's in the same round, in µs.
    if (c !== 'direct' && keys.has('oneP50Ms')) {
      m['addedP50Us'] = median(rounds.map((r) => (at(r, c, 'oneP50Ms') - at(r, 'direct', 'oneP50Ms')) * 1000))
      m['addedP99Us'] = median(rounds.map((r) => (at(r, c, 'oneP99Ms') - at(r, 'direct', 'oneP99Ms')) * 1000))
    }
    out[c] = m
  }
  return out
}
