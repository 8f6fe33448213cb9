import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

/** Runs fn and returns the thrown error's code and its issues as `path: message` lines. */
export function failure(fn: () => unknown): { code: string; lines: string[]; message: string } {
  try {
    fn()
  } catch (err) {
    const e = err as { code?: string; message: string; details?: unknown }
    const lines = Array.isArray(e.details) ? (e.details as Array<{ path: string; message: string }>).map((i) => `${i.path}: ${i.message}`) : []
    return { code: e.code ?? 'none', lines, message: e.message }
  }
  return { code: 'none', lines: [], message: '' }
}

export const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'

/** Writes files (relative to dir) and returns dir. */
export function writeFiles(dir: string, files: Record<string, string>, mode = 0o600): string {
  for (const [name, text] of Object.entries(files)) {
    const file = join(dir, name)
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, text, { mode })
  }
  return dir
}

export const HASH_A = 'a'.repeat(64)
