import { PorchlightError } from '@porchlight/shared/errors'

/** Units accepted by `--expires` and similar flags. */
const UNIT_MS: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
}

/**
 * Longest duration we accept: the relay's cap on a share link's lifetime (365 days). Checked
 * here too, so `--expires 366d` fails on the command line instead of at the relay.
 */
export const MAX_DURATION_MS = 365 * UNIT_MS['d']!

/**
 * Parses "30m", "24h", "7d", "1h30m", "90s" into milliseconds. Bare numbers are rejected so that
 * "24" is never silently read as 24 ms. Throws PL_ERR_USAGE with the offending text.
 */
export function parseDurationMs(text: string): number {
  const input = text.trim().toLowerCase()
  if (input.length === 0 || input.length > 32 || !/^(\d+[smhdw])+$/.test(input)) {
    throw new PorchlightError('PL_ERR_USAGE', [`invalid duration "${text}" (use e.g. 30m, 24h, 7d)`])
  }
  let total = 0
  for (const match of input.matchAll(/(\d+)([smhdw])/g)) {
    total += Number(match[1]) * UNIT_MS[match[2]!]!
  }
  if (total <= 0 || total > MAX_DURATION_MS) {
    throw new PorchlightError('PL_ERR_USAGE', [`duration "${text}" must be between 1s and 365d (the longest a share link may last)`])
  }
  return total
}

/** "1h30m" style text for humans (status output). */
export function formatDurationMs(ms: number): string {
  if (ms < 1_000) return `${Math.max(0, Math.round(ms))}ms`
  let rest = Math.round(ms / 1_000)
  const parts: string[] = []
  for (const [unit, size] of [['d', 86_400], ['h', 3_600], ['m', 60], ['s', 1]] as const) {
    const n = Math.floor(rest / size)
    if (n > 0) parts.push(`${n}${unit}`)
    rest -= n * size
  }
  return parts.join('')
}
