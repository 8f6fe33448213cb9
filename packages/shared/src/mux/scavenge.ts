import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/** Bytes moved over agent links (both directions, all sessions) between two requested scavenges. */
export const SCAVENGE_EVERY_BYTES = 4 * 1024 * 1024
/** Buffer memory (live or dead) above which a full GC is considered: see noteBytesMoved. */
const FULL_GC_ABOVE_BYTES = 32 * 1024 * 1024
/** Fewest scavenges between two full GCs (so at most one per 32 MiB moved). */
const FULL_GC_EVERY = 8

type Gc = (options: { type: 'minor' | 'major'; execution: 'sync' | 'async' }) => void

/** undefined: not looked up yet; null: this runtime offers none (then nothing is paced). */
let gc: Gc | null | undefined
let movedBytes = 0
let scavengesSinceFull = 0
let queued = false

/**
 * Counts bytes a link moved; every SCAVENGE_EVERY_BYTES asks V8 for a young-generation GC.
 *
 * Why: bulk traffic allocates a Buffer per socket read (64 KiB) and per reassembled WebSocket
 * message, while the JavaScript objects around them are tiny. V8 scavenges when the young
 * generation's small objects fill it, which here is tens of MiB of data apart, so the dead
 * buffers' memory waits for the external-memory limit (64 MiB above the last full GC) and RSS
 * rises by that much during every transfer. A scavenge every few MiB frees them while they are
 * young; it costs ~0.2 ms, far below the CPU the bytes themselves cost (docs/operations.md, Memory).
 * Buffers that wait in a stream for a slow reader outlive two scavenges and move to the old
 * generation, where only a full GC frees them: every 8th request looks, and while buffers hold
 * more than 32 MiB it is an incremental full GC instead (a fast reader never gets there, so never pays it).
 */
export function noteBytesMoved(bytes: number): void {
  movedBytes += bytes
  if (movedBytes < SCAVENGE_EVERY_BYTES || queued) return
  movedBytes = 0
  queued = true
  // After the current I/O callbacks: never inside a write or a parse.
  setImmediate(scavenge).unref()
}

function scavenge(): void {
  queued = false
  gc ??= lookUpGc()
  if (gc === null) return
  // Buffer memory is looked at on every 8th scavenge only: process.memoryUsage() reads /proc and
  // the heap's statistics, and on every scavenge it was ~1.5% of a bulk transfer's CPU.
  if (++scavengesSinceFull >= FULL_GC_EVERY) {
    scavengesSinceFull = 0
    if (process.memoryUsage().arrayBuffers > FULL_GC_ABOVE_BYTES) return gc({ type: 'major', execution: 'async' })
  }
  gc({ type: 'minor', execution: 'sync' })
}

/**
 * V8's gc() function without exposing it to the program: with --expose-gc set, a fresh context
 * gets a gc global; the flag is cleared again at once. A process started with --expose-gc has
 * one already.
 */
function lookUpGc(): Gc | null {
  const own = (globalThis as { gc?: unknown }).gc
  if (typeof own === 'function') return own as Gc
  try {
    setFlagsFromString('--expose-gc')
    const found = runInNewContext('gc') as unknown
    return typeof found === 'function' ? (found as Gc) : null
  } catch {
    return null
  } finally {
    setFlagsFromString('--no-expose-gc')
  }
}
