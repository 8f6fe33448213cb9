import type { Duplex } from 'node:stream'
import { readHead, writeHead } from '../protocol/framing.js'
import { ReplyHead } from '../protocol/messages.js'
import { pipeBoth } from './pipe-both.js'

export interface BridgeOptions {
  /** How long the far end has to answer the head (it dials, or checks policy and dials). */
  replyTimeoutMs: number
  /**
   * The far end answered anything but {t:'ok'}. `message` is undefined when the reply was not a
   * valid error head (code is then PL_ERR_PROTO_BAD_MESSAGE). Both sides are destroyed after.
   */
  onRefused: (code: string, message: string | undefined) => void
  /** No reply head (timeout, end, reset, bad framing). Both sides are destroyed after. */
  onNoReply: (err: unknown) => void
  /** Bytes flowed and the pipe finished; pipeBoth's onDone. */
  onDone: (err?: Error) => void
}

/**
 * Connects an accepted local socket to a freshly opened stream: writes `head`, waits for the
 * reply head, and on {t:'ok'} pipes both ways (the socket should be paused until then:
 * pauseOnConnect). A socket that closes before the reply resets the stream, so the far end
 * stops dialling; the pending read then ends in onNoReply (at the latest after replyTimeoutMs).
 * Stream 'error' listeners stay the caller's job.
 */
export function bridgeSocketToStream(socket: Duplex, stream: Duplex, head: unknown, opts: BridgeOptions): void {
  const onEarlyClose = (): void => {
    stream.destroy()
  }
  socket.once('close', onEarlyClose)
  writeHead(stream, head)
  readHead(stream, opts.replyTimeoutMs).then(
    (value) => {
      socket.off('close', onEarlyClose)
      const reply = ReplyHead.safeParse(value)
      if (socket.destroyed) {
        stream.destroy()
        return
      }
      if (!reply.success || reply.data.t !== 'ok') {
        const refusal = reply.success && reply.data.t === 'error' ? reply.data : undefined
        opts.onRefused(refusal?.code ?? 'PL_ERR_PROTO_BAD_MESSAGE', refusal?.message)
        socket.destroy()
        stream.destroy()
        return
      }
      pipeBoth(socket, stream, opts.onDone)
    },
    (err: unknown) => {
      socket.off('close', onEarlyClose)
      opts.onNoReply(err)
      socket.destroy()
      stream.destroy()
    },
  )
}
