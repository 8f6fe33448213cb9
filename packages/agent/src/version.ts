import { readFileSync } from 'node:fs'

/** The agent's software version (package.json), sent in `hello` and shown by --version. */
export const AGENT_VERSION: string = readVersion()

function readVersion(): string {
  try {
    // ../package.json from both src/ (tsx) and dist/ (built).
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown }
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0'
  } catch {
    return '0.0.0'
  }
}
