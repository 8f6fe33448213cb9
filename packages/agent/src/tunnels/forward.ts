import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { PorchlightError } from '@porchlight/shared/errors'
import type { Logger } from '@porchlight/shared/log'
import { bridgeSocketToStream, isLoopbackAddress } from '@porchlight/shared/net'

/** What tunnels/forward.ts needs from a `forward:` tunnel of the agent config. */
export interface ForwardTunnelTarget {
  kind: 'forward'
  id: string
  /** Local listen address (127.0.0.1 by default, so LAN hosts cannot use the laptop as a relay). */
  forward: { host: string; port: number }
  /** Destination the relay dials, subject to the relay's outbound policy. */
  to: { host: string; port: number }
}

export interface ForwardListenerOptions {
  tunnel: ForwardTunnelTarget
  /** Opens a stream to the relay; throws when the link is down (the local client is then closed). */
  openStream: () => Duplex
  log: Logger
  /** How long the relay has to resolve, check and dial (its own connect timeout is 10 s). */
  replyTimeoutMs?: number
}

const DEFAULT_REPLY_TIMEOUT_MS = 25_000

/**
 * An outbound forward: listens locally, and for each local connection opens a stream to the
 * relay with a ForwardHead; the relay checks its policy and dials. On {t:'ok'} bytes flow both
 * ways with half-close preserved; on an error reply the local client is closed at once.
 */
export class ForwardListener {
  private readonly server: Server
  private readonly live = new Set<Socket>()
  private readonly replyTimeoutMs: number

  constructor(private readonly opts: ForwardListenerOptions) {
    this.replyTimeoutMs = opts.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS
    // pauseOnConnect: nothing is read from the client until the relay said the destination is ok.
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.onConnection(socket))
    this.server.on('error', (err) => opts.log.error({ err, tunnel: opts.tunnel.id }, 'forward listener error'))
  }

  /** Local connections currently open. */
  get connections(): number {
    return this.live.size
  }

  /** Binds tunnel.forward; resolves with the bound address. Bind failures -> PL_ERR_LISTEN. */
  listen(): Promise<{ host: string; port: number }> {
    const { tunnel, log } = this.opts
    const { host, port } = tunnel.forward
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(new PorchlightError('PL_ERR_LISTEN', [`${host}:${port}`, `forward ${tunnel.id}`, err.code ?? err.message], { cause: err }))
      }
      this.server.once('error', onError)
      this.server.listen({ host, port }, () => {
        this.server.off('error', onError)
        const bound = this.server.address() as AddressInfo
        if (!isLoopbackAddress(host)) {
          log.warn({ tunnel: tunnel.id, host }, 'forward listens on a non-loopback address: other machines can send traffic through the relay')
        }
        log.debug({ tunnel: tunnel.id, listen: `${bound.address}:${bound.port}`, to: `${tunnel.to.host}:${tunnel.to.port}` }, 'forward listener bound')
        resolve({ host: bound.address, port: bound.port })
      })
    })
  }

  /**
   * Stops accepting at once. Live connections get up to `graceMs` to finish (SIGTERM drain),
   * then are destroyed; the default destroys them immediately.
   */
  async close(opts: { graceMs?: number } = {}): Promise<void> {
    const closed = new Promise<void>((resolve) => {
      if (this.server.listening) this.server.close(() => resolve())
      else resolve()
    })
    const graceMs = opts.graceMs ?? 0
    if (graceMs > 0 && this.live.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs)
        const check = (): void => {
          if (this.live.size > 0) return
          clearTimeout(timer)
          resolve()
        }
        for (const socket of this.live) socket.once('close', check)
      })
    }
    for (const socket of this.live) socket.destroy()
    this.live.clear()
    await closed
  }

  private onConnection(socket: Socket): void {
    const { tunnel, log } = this.opts
    socket.on('error', (err) => log.debug({ err, tunnel: tunnel.id }, 'forward client socket error'))
    socket.setNoDelay(true)
    this.live.add(socket)
    socket.once('close', () => this.live.delete(socket))

    let stream: Duplex
    try {
      stream = this.opts.openStream()
    } catch (err) {
      log.warn({ err, tunnel: tunnel.id }, 'forward connection dropped: relay link is down')
      socket.destroy()
      return
    }
    stream.on('error', (err) => log.debug({ err, tunnel: tunnel.id }, 'forward stream error'))
    const started = Date.now()
    // The bridge resets the stream if the local client leaves first, so the relay stops dialling.
    bridgeSocketToStream(socket, stream, { t: 'forward', host: tunnel.to.host, port: tunnel.to.port }, {
      replyTimeoutMs: this.replyTimeoutMs,
      onRefused: (code, message = 'unexpected reply to a forward') => {
        log.warn({ tunnel: tunnel.id, code, message }, 'forward refused by the relay')
      },
      onNoReply: (err) => log.warn({ err, tunnel: tunnel.id }, 'forward dropped: no reply from the relay'),
      onDone: (err) => {
        const fields = { tunnel: tunnel.id, bytesOut: socket.bytesRead, bytesIn: socket.bytesWritten, ms: Date.now() - started }
        if (err) log.info({ ...fields, err }, 'forward closed with error')
        else log.info(fields, 'forward')
      },
    })
  }
}
