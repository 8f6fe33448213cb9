import { constants, performance, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks'
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8'
import { holdOptimizer, holdUntilReleased, releaseOptimizer } from './optimizer-hold.js'

/** V8's own default for --semi-space-growth-factor. */
const V8_DEFAULT_GROWTH_FACTOR = 2
/** Once serving, the young generation (two semi-spaces) may grow to this, not to V8's 32 MiB. */
export const MAX_YOUNG_GENERATION_BYTES = 8 * 1024 * 1024
/** How often the young generation's size is looked at once serving. */
const CHECK_EVERY_MS = 250
/**
 * Scavenges within LOAD_WINDOW_MS that mean load (at 1 MiB semi-spaces, 8 MiB/s allocated): below
 * it the young generation keeps its initial size, so an idle process that saw a login or a
 * reload does not keep 8 MiB for good. A quick wrk run scavenges hundreds of times a second.
 */
const LOAD_SCAVENGES = 8
const LOAD_WINDOW_MS = 1000
/** Scavenges since serving after which the optimizing compiler is back even at a slow rate (~16 MiB allocated). */
const OPTIMIZE_AFTER_SCAVENGES = 16

let growthFactor = 0

function setGrowthFactor(factor: number): void {
  if (factor === growthFactor) return
  growthFactor = factor
  setFlagsFromString(`--semi-space-growth-factor=${factor}`)
}

/**
 * Imported first by both binaries, before anything else allocates: while the process starts, V8's
 * young generation keeps its initial 1 MiB semi-spaces instead of doubling up to 16 MiB.
 *
 * Why: loading and compiling the modules keeps many new objects alive, which is what makes V8 grow
 * the young generation; grown, it is ~15-30 MiB of RSS that an idle relay or agent never gives back.
 * `--max-semi-space-size` would say the same but only works on the command line; the growth factor
 * is read each time V8 considers growing, so setting it at runtime takes effect.
 */
setGrowthFactor(1)
// The same reasoning for optimized code: none is made for start-up code (optimizer-hold.ts).
holdOptimizer()

/**
 * Called once the process serves (relay: listening; agent: first link up). From here the young
 * generation may grow under load again, up to MAX_YOUNG_GENERATION_BYTES: under many small requests
 * a bigger one means fewer scavenges (held at 1 MiB, a quick wrk run cost 5-30% more CPU per
 * request), but V8's full 32 MiB buys little more and costs that much RSS under any load. Load is
 * LOAD_SCAVENGES scavenges within a second; without it (idle, a login, a reload) it does not grow,
 * and the optimizing compiler stays off until the first load.
 */
export function startupDone(): void {
  holdUntilReleased()
  let windowStart = -Infinity
  let scavenges = 0
  let serving = 0
  const check = (): void => {
    const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')
    const full = young !== undefined && young.space_size >= MAX_YOUNG_GENERATION_BYTES
    const loaded = scavenges >= LOAD_SCAVENGES && performance.now() - windowStart <= LOAD_WINDOW_MS
    setGrowthFactor(!full && loaded ? V8_DEFAULT_GROWTH_FACTOR : 1)
    // The first load, or enough work at any rate, brings the optimizing compiler back for good (optimizer-hold.ts).
    if (loaded || serving >= OPTIMIZE_AFTER_SCAVENGES) releaseOptimizer()
  }
  const countScavenge = (entry: PerformanceEntry): void => {
    if ((entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind !== constants.NODE_PERFORMANCE_GC_MINOR) return
    if (entry.startTime - windowStart > LOAD_WINDOW_MS) {
      windowStart = entry.startTime
      scavenges = 0
    }
    scavenges++
    serving++
  }
  check()
  // After every GC (the young generation only grows at one), and on a timer as a backstop.
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) countScavenge(entry)
    check()
  })
  observer.observe({ entryTypes: ['gc'] })
  setInterval(check, CHECK_EVERY_MS).unref()
}
