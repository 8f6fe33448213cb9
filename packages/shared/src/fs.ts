import { access } from 'node:fs/promises'

/** True when something exists at `path` (refuse-to-overwrite checks, default-file lookups). */
export async function fileExists(path: string): Promise<boolean> {
  try {
    await access(path)
    return true
  } catch {
    return false
  }
}
