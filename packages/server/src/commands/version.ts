import { readFileSync } from 'node:fs'

/** The relay's software version (package.json), shown by --version. */
export const RELAY_VERSION: string = readVersion()

function readVersion(): string {
  try {
    // ../../package.json from both src/commands (tsx) and dist/commands (built).
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown }
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0'
  } catch {
    return '0.0.0'
  }
}
