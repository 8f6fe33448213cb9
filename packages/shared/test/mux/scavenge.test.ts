import { setImmediate as nextTurn } from 'node:timers/promises'
import t from 'tap'
import { noteBytesMoved, SCAVENGE_EVERY_BYTES } from '../../src/mux/scavenge.js'

const MiB = 1024 * 1024
const CHUNK = 64 * 1024
/** Four times V8's 64 MiB external-memory limit, so unpaced garbage reaches it. */
const TOTAL = 256 * MiB

/**
 * What a bulk stream does to memory: a fresh 64 KiB buffer per socket read, dead right after.
 * Returns the most buffer memory that was allocated and not yet freed at any time, over the start.
 */
async function churn(pace: boolean): Promise<number> {
  const start = process.memoryUsage().arrayBuffers
  let peak = 0
  for (let moved = 0, i = 0; moved < TOTAL; moved += CHUNK, i++) {
    const read = Buffer.allocUnsafeSlow(CHUNK)
    read[0] = i // touched, as a read fills it
    if (pace) noteBytesMoved(CHUNK)
    // Socket reads arrive over many event-loop turns; the requested scavenge runs between them.
    if (i % 16 === 15) {
      await nextTurn()
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - start)
    }
  }
  return peak
}

t.test('dead read buffers are freed every few MiB instead of piling up to V8\'s 64 MiB limit', async (t) => {
  const unpaced = await churn(false)
  const paced = await churn(true)
  t.comment(`garbage peak: ${(unpaced / MiB).toFixed(1)} MiB unpaced, ${(paced / MiB).toFixed(1)} MiB paced (a scavenge every ${SCAVENGE_EVERY_BYTES / MiB} MiB)`)
  t.ok(paced <= 4 * SCAVENGE_EVERY_BYTES, `paced peak ${(paced / MiB).toFixed(1)} MiB <= ${4 * SCAVENGE_EVERY_BYTES / MiB} MiB`)
  t.ok(unpaced > paced + 16 * MiB, `without pacing it grows much further (${(unpaced / MiB).toFixed(1)} MiB)`)
})

t.test('buffer memory is looked at on every 8th scavenge, not on each', async (t) => {
  const real = process.memoryUsage
  let looks = 0
  const counting = Object.assign(() => { looks++; return real() }, { rss: real.rss }) as typeof process.memoryUsage
  process.memoryUsage = counting
  t.teardown(() => { process.memoryUsage = real })
  for (let i = 0; i < 32; i++) {
    noteBytesMoved(SCAVENGE_EVERY_BYTES)
    await nextTurn()
  }
  process.memoryUsage = real
  t.ok(looks >= 3 && looks <= 5, `${looks} looks in 32 scavenges`)
})
