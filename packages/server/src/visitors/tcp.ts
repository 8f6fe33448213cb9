import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { PorchlightError } from '@porchlight/shared/errors'
import type { Logger } from '@porchlight/shared/log'
import { bridgeSocketToStream, ipAllowed, normalizeIp, parseCidrList, type Cidr } from '@porchlight/shared/net'
import type { TcpHead } from '@porchlight/shared/protocol'

export interface TcpTunnelOptions {
  /** Interface to bind (the relay's public listener host). */
  host: string
  port: number
  tunnelId: string
  agent: string
  /** Visitor CIDRs allowed in; empty = everyone. Checked on the L4 peer address. */
  allowIps: readonly string[]
  /** Per-tunnel concurrency cap (SECURITY D8); connections beyond it are closed at once. */
  maxConnections?: number
  /** Opens a stream to the agent; throws when the agent is offline. */
  openStream: () => Duplex
  log: Logger
  /** How long the agent has to answer the TcpHead (dial its local service). */
  replyTimeoutMs?: number
  /** Connection and byte counts (`/metrics`). */
  meter?: TcpTunnelMeter
}

/** What a tunnel port reports to the metrics: each accepted connection, and limit refusals. */
export interface TcpTunnelMeter {
  /** One accepted connection; the returned function is called once when it closes. */
  opened(agent: string, port: number): (bytesIn: number, bytesOut: number) => void
  /** A connection refused by the per-tunnel connection cap. */
  limitRefused(): void
}

const DEFAULT_MAX_CONNECTIONS = 1024
const DEFAULT_REPLY_TIMEOUT_MS = 10_000
const REFUSAL_LOG_INTERVAL_MS = 1_000

/**
 * A relay port serving one reverse-TCP tunnel: each visitor connection becomes one stream to the
 * agent, introduced by a TcpHead, then raw bytes both ways with half-close preserved.
 */
export class TcpTunnelListener {
  private readonly server: Server
  private allow: Cidr[]
  private readonly maxConnections: number
  private readonly replyTimeoutMs: number
  private readonly live = new Set<Socket>()
  private readonly refusals = new RefusalLog()
  private readonly invalidAllowIp: string | null
  private boundPort = 0

  constructor(private readonly opts: TcpTunnelOptions) {
    const { cidrs, invalid } = parseCidrList(opts.allowIps)
    this.allow = cidrs
    this.invalidAllowIp = invalid[0] ?? null
    this.maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS
    this.replyTimeoutMs = opts.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS
    // allowHalfOpen keeps the visitor's FIN from closing our write side; pauseOnConnect keeps
    // bytes in the kernel until the agent's stream is ready for them.
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.onConnection(socket))
    this.server.on('error', (err) => this.opts.log.error({ err, tunnel: opts.tunnelId }, 'tcp tunnel listener error'))
  }

  /** The bound port (0 before listen). */
  get port(): number {
    return this.boundPort
  }

  /** Visitor connections currently open. */
  get connections(): number {
    return this.live.size
  }

  /**
   * Binds; resolves with the port. A bad allow_ips entry -> PL_ERR_PROTO_BAD_MESSAGE (nothing is
   * bound: a typo must not open the port to everyone), EADDRINUSE -> PL_ERR_POLICY_PORT_IN_USE,
   * other bind errors -> PL_ERR_LISTEN.
   */
  listen(): Promise<number> {
    const { host, port, tunnelId } = this.opts
    if (this.invalidAllowIp !== null) {
      return Promise.reject(new PorchlightError('PL_ERR_PROTO_BAD_MESSAGE', [`allow_ips entry ${JSON.stringify(this.invalidAllowIp)} is not an IP address or CIDR`]))
    }
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        if (err.code === 'EADDRINUSE') reject(new PorchlightError('PL_ERR_POLICY_PORT_IN_USE', [port], { cause: err }))
        else reject(new PorchlightError('PL_ERR_LISTEN', [`${host}:${port}`, `tcp tunnel ${tunnelId}`, err.code ?? err.message], { cause: err }))
      }
      this.server.once('error', onError)
      this.server.listen({ host, port }, () => {
        this.server.off('error', onError)
        this.boundPort = (this.server.address() as AddressInfo).port
        this.opts.log.info({ tunnel: tunnelId, agent: this.opts.agent, port: this.boundPort }, 'tcp tunnel listening')
        resolve(this.boundPort)
      })
    })
  }

  /**
   * Replaces the visitor allow-list of a port that stays open (the agent re-published after a
   * reload). New connections are checked against it, and live ones it no longer allows are cut,
   * so narrowing the list takes effect at once. A bad entry throws PL_ERR_PROTO_BAD_MESSAGE and
   * changes nothing (the caller closes the port: a typo must not leave it open to everyone).
   */
  setAllowIps(allowIps: readonly string[]): void {
    const { cidrs, invalid } = parseCidrList(allowIps)
    if (invalid[0] !== undefined) {
      throw new PorchlightError('PL_ERR_PROTO_BAD_MESSAGE', [`allow_ips entry ${JSON.stringify(invalid[0])} is not an IP address or CIDR`])
    }
    this.allow = cidrs
    if (cidrs.length === 0) return
    for (const socket of this.live) {
      if (ipAllowed(socket.remoteAddress, cidrs)) continue
      this.opts.log.info({ tunnel: this.opts.tunnelId, agent: this.opts.agent, remote: socket.remoteAddress }, 'tcp connection cut: no longer in allow_ips')
      socket.destroy()
    }
  }

  /** Stops accepting and destroys every live connection; the port is free when this resolves. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) {
        this.destroyLive()
        resolve()
        return
      }
      this.server.close(() => resolve())
      this.destroyLive()
    })
  }

  private destroyLive(): void {
    for (const socket of this.live) socket.destroy()
    this.live.clear()
  }

  private onConnection(socket: Socket): void {
    const { log, tunnelId, agent } = this.opts
    socket.on('error', (err) => log.debug({ err, tunnel: tunnelId }, 'visitor socket error'))
    if (this.allow.length > 0 && !ipAllowed(socket.remoteAddress, this.allow)) {
      this.refusals.note(log, { tunnel: tunnelId, agent, reason: 'allow_ips', remote: socket.remoteAddress })
      socket.destroy()
      return
    }
    if (this.live.size >= this.maxConnections) {
      this.refusals.note(log, { tunnel: tunnelId, agent, reason: 'max_connections', limit: this.maxConnections })
      this.opts.meter?.limitRefused()
      socket.destroy()
      return
    }
    socket.setNoDelay(true)
    this.live.add(socket)
    socket.once('close', () => this.live.delete(socket))

    let stream: Duplex
    try {
      stream = this.opts.openStream()
    } catch (err) {
      log.debug({ err, tunnel: tunnelId }, 'tcp visitor dropped: agent stream unavailable')
      socket.destroy()
      return
    }
    this.serve(socket, stream)
  }

  private serve(socket: Socket, stream: Duplex): void {
    const { log, tunnelId, agent } = this.opts
    const started = Date.now()
    // Counted on the socket's close, which every ending reaches (refused by the agent included).
    const closed = this.opts.meter?.opened(agent, this.boundPort)
    if (closed) socket.once('close', () => closed(socket.bytesRead, socket.bytesWritten))
    const remote = { address: normalizeIp(socket.remoteAddress ?? '') ?? '', port: socket.remotePort ?? 0 }
    const local = { address: normalizeIp(socket.localAddress ?? '') ?? '', port: socket.localPort ?? 0 }
    stream.on('error', (err) => log.debug({ err, tunnel: tunnelId }, 'tcp tunnel stream error'))
    const head: TcpHead = {
      t: 'tcp', tunnel: tunnelId,
      remote_address: remote.address, remote_port: remote.port,
      local_address: local.address, local_port: local.port,
    }
    // The bridge resets the stream if the visitor leaves first, so the agent stops dialling.
    bridgeSocketToStream(socket, stream, head, {
      replyTimeoutMs: this.replyTimeoutMs,
      onRefused: (code, message) => {
        const detail = message === undefined ? { code } : { code, message }
        log.info({ tunnel: tunnelId, agent, remote: remote.address, ...detail }, 'tcp visitor refused by agent')
      },
      onNoReply: (err) => log.info({ err, tunnel: tunnelId, agent }, 'tcp visitor dropped: no reply from agent'),
      onDone: (err) => {
        const fields = { tunnel: tunnelId, agent, remote: remote.address, bytesIn: socket.bytesRead, bytesOut: socket.bytesWritten, ms: Date.now() - started }
        if (err) log.info({ ...fields, err }, 'tcp connection closed with error')
        else log.info(fields, 'tcp connection')
      },
    })
  }
}

/** At most one log line per interval for refused connections (a flood must not flood the logs). */
class RefusalLog {
  private lastMs = 0
  private suppressed = 0

  note(log: Logger, fields: Record<string, unknown>): void {
    const now = Date.now()
    if (now - this.lastMs < REFUSAL_LOG_INTERVAL_MS) {
      this.suppressed++
      return
    }
    log.warn({ ...fields, suppressed: this.suppressed }, 'tcp visitor refused')
    this.lastMs = now
    this.suppressed = 0
  }
}
