import type { Duplex } from 'node:stream'

/** Error passed to onDone when one side closed without finishing its half cleanly (reset, destroy). */
export class PrematureCloseError extends Error {
  readonly code = 'ERR_STREAM_PREMATURE_CLOSE'
  constructor(side: 'a' | 'b') {
    super(`side ${side} closed before both directions finished`)
    this.name = 'PrematureCloseError'
  }
}

/**
 * Pipes a <-> b with backpressure in both directions and half-close preserved: when a ends, b is
 * ended, but b may keep writing to a until b ends too. An error, or a close before a side finished
 * both halves, destroys both sides. `onDone` runs exactly once: after both directions have
 * flushed (no error), or at the first failure (with the error). Every listener this adds is
 * removed when it finishes.
 *
 * Sockets handed to this must be created with `allowHalfOpen: true`, or Node ends their write
 * side as soon as the peer's FIN arrives and the half-close is lost.
 */
export function pipeBoth(a: Duplex, b: Duplex, onDone?: (err?: Error) => void): void {
  const cleanups: Array<() => void> = []
  let finished = false
  let aToBDone = false
  let bToADone = false

  function listen(target: Duplex, event: string, fn: Listener): void {
    target.on(event, fn)
    cleanups.push(() => target.off(event, fn))
  }

  function finish(err?: Error): void {
    if (finished) return
    finished = true
    for (const cleanup of cleanups) cleanup()
    if (err !== undefined) {
      // Teardown can make either side emit one more error; it must not become an uncaught one.
      a.on('error', ignore)
      b.on('error', ignore)
      a.destroy()
      b.destroy()
    }
    onDone?.(err)
  }

  function pump(src: Duplex, dst: Duplex, done: () => void): void {
    listen(src, 'data', (chunk: Buffer) => {
      if (!dst.write(chunk)) src.pause()
    })
    listen(dst, 'drain', () => src.resume())
    if (src.readableEnded) dst.end()
    else listen(src, 'end', () => dst.end())
    if (dst.writableFinished) done()
    else listen(dst, 'finish', done)
  }

  function checkClosed(side: Duplex, name: 'a' | 'b'): void {
    if (!side.destroyed) return
    // A side that closed after ending both halves is a normal close; the other side may still flush.
    if (side.readableEnded && side.writableFinished) return
    finish(side.errored ?? new PrematureCloseError(name))
  }

  const onDirectionDone = (): void => {
    if (aToBDone && bToADone) finish()
  }
  pump(a, b, () => {
    aToBDone = true
    onDirectionDone()
  })
  pump(b, a, () => {
    bToADone = true
    onDirectionDone()
  })
  listen(a, 'error', (err: Error) => finish(err))
  listen(b, 'error', (err: Error) => finish(err))
  listen(a, 'close', () => checkClosed(a, 'a'))
  listen(b, 'close', () => checkClosed(b, 'b'))

  checkClosed(a, 'a')
  checkClosed(b, 'b')
  if (finished) return
  onDirectionDone()
  if (finished) return
  // Heads are read in paused mode (readHead, pauseOnConnect); start both flows now.
  a.resume()
  b.resume()
}

type Listener = Parameters<Duplex['on']>[1]

function ignore(): void {}
