import { setFlagsFromString } from 'node:v8'

/** Past this, the optimizing compiler is back unless the process said it serves (a CLI command, an agent whose relay is down). */
export const OPTIMIZER_HOLD_MAX_MS = 10_000

let held = false
let fallback: NodeJS.Timeout | null = null

/**
 * While the process starts, V8's optimizing compiler (TurboFan) stays off.
 *
 * Why: loading the modules runs code that turns "hot" for a moment (schema building, the CJS
 * export scanner, YAML parsing) and gets optimized on V8's background threads. That pulls in
 * TurboFan's own code pages and leaves its compile zones in those threads' malloc arenas: about
 * 10 MiB of RSS in both the relay and the agent that an idle process never gives back, for code
 * that will not run again. Start-up code runs once, so it loses nothing by staying unoptimized;
 * the serving code is optimized as usual once releaseOptimizer() has run and traffic makes it hot.
 * `--turbofan` is read each time V8 considers optimizing a function, so setting it at runtime works.
 * The first optimization of all pays the fixed part (about 4 MiB), so a serving process keeps the
 * hold until load (heap.ts): an agent's login alone made two functions hot on an idle relay.
 */
export function holdOptimizer(): void {
  if (held) return
  held = true
  setFlagsFromString('--no-turbofan')
  // The same idea for the heap: V8 sizes and collects it for memory, not speed (~1 MiB less RSS
  // idle; read at each decision, so it ends with the hold).
  setFlagsFromString('--optimize-for-size')
  fallback = setTimeout(releaseOptimizer, OPTIMIZER_HOLD_MAX_MS)
  fallback.unref()
}

/** The process serves: the hold lasts until releaseOptimizer(), with no deadline. */
export function holdUntilReleased(): void {
  if (fallback !== null) clearTimeout(fallback)
  fallback = null
}

/** Load (or the deadline): functions that get hot from here on are optimized again. Idempotent. */
export function releaseOptimizer(): void {
  if (fallback !== null) clearTimeout(fallback)
  fallback = null
  if (!held) return
  held = false
  setFlagsFromString('--turbofan')
  setFlagsFromString('--no-optimize-for-size')
}

/** For tests: whether the hold is on. */
export function optimizerHeld(): boolean {
  return held
}
