import type { ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import { StallWatch } from './stall-watch.js'

export interface ReplyBodyOptions {
  /** `limits.stall_timeout_ms`: how long the visitor's socket may stay full. */
  stallTimeoutMs: number
  onBytes: (n: number) => void
  /** The visitor stopped reading; its connection is being closed. */
  onStall: (blockedMs: number) => void
}

/**
 * Copies the origin's response body (a mux stream, or Node's client response) to the visitor, pausing the stream while
 * the visitor's socket is full (backpressure through the mux window to the origin). A body that
 * ends early (reset, agent gone) destroys the visitor's connection so the truncation shows.
 * pipe() by hand: one 'data' listener that also counts, instead of pipe's listener set per request.
 */
export function pipeReplyBody(stream: Readable, res: ServerResponse, opts: ReplyBodyOptions): void {
  // Built at the first backpressure only: most responses never fill the visitor's socket.
  let stall: StallWatch | null = null
  const watchStall = (): StallWatch => {
    const watch = new StallWatch(opts.stallTimeoutMs, (blockedMs) => {
      opts.onStall(blockedMs)
      res.destroy()
    })
    res.on('close', () => watch.stop())
    return watch
  }
  stream.on('data', (chunk: Buffer) => {
    opts.onBytes(chunk.length)
    if (!res.write(chunk)) {
      stream.pause()
      ;(stall ??= watchStall()).blocked()
    }
  })
  res.on('drain', () => {
    stall?.drained()
    stream.resume()
  })
  // A bodyless reply's FIN may have come with its head: 'end' already fired while it was read.
  if (stream.readableEnded) res.end()
  else stream.on('end', () => res.end())
  // A truncated body must look truncated: destroy the visitor's connection, never end it.
  stream.on('error', cut)
  stream.on('close', () => { if (!stream.readableEnded) cut() })
  let wroteBody = false
  stream.once('data', () => { wroteBody = true })
  function cut(): void {
    cutResponse(res, wroteBody)
  }
}

/**
 * A truncated body must look truncated: the visitor's connection is destroyed, never ended. Node
 * sends the head with the first body write, so a body that fails before its first byte (the agent
 * died or the link went silent right after the reply head) would otherwise reset the connection
 * with no response at all; the head goes first, so the visitor sees a response cut short of its
 * length (found by test/faults/link-faults.test.ts).
 */
export function cutResponse(res: ServerResponse, wroteBody: boolean): void {
  if (res.destroyed) return
  const socket = res.socket
  if (!wroteBody && socket && !socket.destroyed) {
    res.flushHeaders()
    socket.write('', () => res.destroy())
    return
  }
  res.destroy()
}
