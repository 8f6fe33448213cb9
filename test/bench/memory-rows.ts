// The RSS rows come from test/bench/memory.ts (written separately: `measureMemory({ quick })`),
// imported only when that file exists, so the side-by-side bench runs with or without it.
import { existsSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import type { MemoryRow } from './result.js'

export type MemoryOutcome = { rows: MemoryRow[]; skipped: null } | { rows: null; skipped: string }

/** `file` is shown in the skip reason as `shownAs` (the repository path, not the absolute one). */
export async function loadMemoryRows(file: string, shownAs: string, quick: boolean): Promise<MemoryOutcome> {
  if (!existsSync(file)) return { rows: null, skipped: `${shownAs} missing` }
  const mod = (await import(pathToFileURL(file).href)) as { measureMemory?: (o: { quick: boolean }) => Promise<MemoryRow[]> }
  if (typeof mod.measureMemory !== 'function') return { rows: null, skipped: `${shownAs} has no measureMemory export` }
  const rows = await mod.measureMemory({ quick })
  if (!Array.isArray(rows) || rows.some((r) => typeof r?.key !== 'string' || typeof r.value !== 'number')) {
    throw new Error(`${shownAs}: measureMemory() must return Array<{ key: string, value: number }>`)
  }
  return { rows, skipped: null }
}
