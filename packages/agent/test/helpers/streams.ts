import { createHash } from 'node:crypto'
import { duplexPair, type Duplex } from 'node:stream'
import { ReplyHead, readHead } from '@porchlight/shared/protocol'

/**
 * [relaySide, agentSide]: a duplexPair standing in for one mux stream. Like a mux stream, a side
 * destroyed before both its directions finished resets the other side (duplexPair alone does not).
 */
export function streamPair(): [Duplex, Duplex] {
  const [a, b] = duplexPair()
  const propagate = (from: Duplex, to: Duplex): void => {
    from.on('close', () => {
      if (!(from.writableFinished && from.readableEnded) && !to.destroyed) to.destroy(Object.assign(new Error('stream reset by peer'), { code: 'PL_ERR_MUX_STREAM_RESET' }))
    })
  }
  propagate(a, b)
  propagate(b, a)
  return [a, b]
}

/** Reads the reply head the agent wrote on its side. */
export async function readReply(relaySide: Duplex, timeoutMs = 5_000): Promise<ReplyHead> {
  return ReplyHead.parse(await readHead(relaySide, timeoutMs))
}

export interface BodyResult {
  bytes: Buffer
  /** True when the stream ended cleanly (FIN); false when it errored or closed without end. */
  ended: boolean
}

/** Everything after the head until FIN, or until the stream errors / closes without FIN. */
export function readBody(relaySide: Duplex, timeoutMs = 10_000): Promise<BodyResult> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const timer = setTimeout(() => reject(new Error('body read timed out')), timeoutMs)
    let done = false
    const finish = (ended: boolean): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve({ bytes: Buffer.concat(chunks), ended })
    }
    relaySide.on('data', (c: Buffer) => chunks.push(c))
    relaySide.on('end', () => finish(true))
    relaySide.on('error', () => finish(false))
    relaySide.on('close', () => finish(relaySide.readableEnded))
    // The FIN may have arrived together with the head, before anyone listened for 'end'.
    if (relaySide.readableEnded) finish(true)
    else if (relaySide.destroyed) finish(false)
  })
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex')
}

/** Deterministic pseudo-random bytes (so both sides can hash without storing). */
export function patternBytes(size: number, seed = 7): Buffer {
  const out = Buffer.allocUnsafe(size)
  let x = seed >>> 0
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    out[i] = x >>> 24
  }
  return out
}
