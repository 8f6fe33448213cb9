import { setFlagsFromString } from 'node:v8'

/** V8's own default for --semi-space-growth-factor. */
const V8_DEFAULT_GROWTH_FACTOR = 2

/**
 * Imported first by both binaries, before anything else allocates: while the process starts, V8's
 * young generation keeps its initial 1 MiB semi-space instead of doubling up to 16 MiB.
 *
 * Why: loading and compiling the modules keeps many new objects alive, which is what makes V8 grow
 * the young generation; grown, it is ~15-30 MiB of RSS that an idle relay or agent never gives back.
 * `--max-semi-space-size` would say the same but only works on the command line; the growth factor
 * is read each time V8 considers growing, so setting it at runtime takes effect.
 */
setFlagsFromString('--semi-space-growth-factor=1')

/**
 * Called once the process serves (relay: listening; agent: first link up). From here the young
 * generation may grow with load again, as V8 does by default: under many small requests a bigger
 * one means fewer scavenges (a 1 MiB one cost 5-30% more CPU per request in a quick wrk run).
 * Bulk transfers do not make it grow: their garbage dies young (see mux/scavenge.ts).
 */
export function startupDone(): void {
  setFlagsFromString(`--semi-space-growth-factor=${V8_DEFAULT_GROWTH_FACTOR}`)
}
