import { randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'
import type { WebSocket } from 'ws'
import { MuxSession, websocketDuplex, type MuxStream } from '@porchlight/shared/mux'
import {
  AgentMessage, MessageDecoder, PROTOCOL_VERSION, StreamHead, encodeMessage, readHead,
  type PublishResult, type RelayMessage, type TunnelSpec,
} from '@porchlight/shared/protocol'
import { PorchlightError } from '@porchlight/shared/errors'
import type { Logger } from '@porchlight/shared/log'
import type { RelayContext } from '../context.js'
import { handleControlRequest } from './requests.js'

const CONTROL_HEAD_TIMEOUT_MS = 10_000

/**
 * One connected agent: its multiplexed link, its control stream and what it publishes.
 * The first stream the agent opens is the control stream; later agent-opened streams are
 * outbound forwards. Streams the relay opens carry visitor traffic.
 */
/**
 * Streams an agent may open per second (its control stream and one per local connection to a
 * forward). Far above what forwards need; it bounds the work a rapid open/reset flood can cause
 * (SECURITY.md E2). The excess gets RST.
 */
export const AGENT_STREAM_OPENS_PER_SECOND = 1_000
/** A link that has not answered a stream open for this long is suspect (a cluster member forwards instead). */
export const STREAM_ACK_MS = 1_000

export class AgentSession {
  readonly id = randomBytes(6).toString('hex')
  readonly connectedAt = new Date()
  readonly log: Logger
  readonly mux: MuxSession
  tunnels: TunnelSpec[] = []
  results: PublishResult[] = []
  /** Serial of the client certificate this session authenticated with, if any (revocation). */
  readonly certSerial: string | null
  /** The agent process's instance id (several processes of one agent hold sessions side by side). */
  readonly instance: string
  /** Which of the process's links this is (one per relay in a cluster); a reconnect of the same link replaces it. */
  readonly link: string
  /** The `token_sha256` this session authenticated against (a reload that changes it closes the session). */
  readonly tokenSha256: string
  /** The agent sent GoAway (its process is stopping): names the relay picked for it are released on close. */
  leaving = false
  private control: MuxStream | null = null
  private closed = false
  /** When the oldest stream open the agent has not answered yet (no frame from it since) was sent. */
  private unansweredSince: number | null = null
  private readonly onClosed: Array<() => void> = []
  private readonly onLeavingFns = new Set<() => void>()

  constructor(
    readonly agent: string,
    ws: WebSocket,
    readonly ctx: RelayContext,
    opts: { certSerial: string | null; remoteAddress: string; instance: string; link: string; tokenSha256: string },
  ) {
    this.certSerial = opts.certSerial
    this.instance = opts.instance
    this.link = opts.link
    this.tokenSha256 = opts.tokenSha256
    this.log = ctx.log.child({ component: 'agents', agent, session: this.id, instance: opts.instance })
    this.mux = new MuxSession(websocketDuplex(ws), {
      role: 'server',
      keepAliveIntervalMs: ctx.config.heartbeat.interval_ms,
      keepAliveTimeoutMs: ctx.config.heartbeat.timeout_ms,
      maxStreams: ctx.config.limits.max_streams_per_agent,
      maxInboundOpensPerSecond: AGENT_STREAM_OPENS_PER_SECOND,
      onStream: (stream) => this.onStream(stream),
    })
    this.mux.on('close', (err?: Error) => this.close(err))
    this.mux.on('goaway', () => {
      this.leaving = true
      const fns = [...this.onLeavingFns]
      this.onLeavingFns.clear()
      for (const fn of fns) fn()
    })
    this.mux.on('throttled', (perSecond: number) => {
      this.log.warn({ code: 'PL_ERR_MUX_OPEN_RATE', perSecond }, 'agent opens streams faster than allowed; refusing the excess')
    })
    this.log.info({ remote: opts.remoteAddress }, 'agent connected')
  }

  /** Opens a stream for visitor traffic; throws a PorchlightError if the link is gone. */
  openStream(): Duplex {
    if (this.closed) throw new PorchlightError('PL_ERR_MUX_CLOSED')
    if (this.unansweredSince === null || this.mux.lastActivityMs >= this.unansweredSince) this.unansweredSince = Date.now()
    return this.mux.open()
  }

  /**
   * True when a stream opened more than STREAM_ACK_MS ago got no frame back (an agent answers an
   * open at once): the path is blackholed or the agent hung, though the heartbeat has not timed out yet.
   */
  get suspect(): boolean {
    const since = this.unansweredSince
    if (since === null) return false
    if (this.mux.lastActivityMs >= since) {
      this.unansweredSince = null
      return false
    }
    return Date.now() - since > STREAM_ACK_MS
  }

  /** True when the agent answers a ping within `timeoutMs` (a live link, not a stale one). */
  answersPing(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false)
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs)
      this.mux.ping().then(
        () => { clearTimeout(timer); resolve(true) },
        () => { clearTimeout(timer); resolve(false) },
      )
    })
  }

  /** Runs `fn` when the agent says it is stopping (GoAway), or at once if it already did; returns the undo. */
  whenLeaving(fn: () => void): () => void {
    if (this.leaving || this.closed) {
      fn()
      return () => undefined
    }
    this.onLeavingFns.add(fn)
    return () => { this.onLeavingFns.delete(fn) }
  }

  whenClosed(fn: () => void): void {
    if (this.closed) fn()
    else this.onClosed.push(fn)
  }

  get isClosed(): boolean {
    return this.closed
  }

  /** Tells the agent why (best effort) and drops the link; idempotent. */
  close(err?: Error, notice?: { code: string; message: string }): void {
    if (this.closed) return
    if (notice && this.control) {
      try {
        this.send({ type: 'notice', level: 'warn', code: notice.code, message: notice.message })
      } catch { /* link already broken */ }
    }
    this.closed = true
    this.ctx.tunnels.unpublish(this)
    this.mux.close(err)
    if (err) this.log.info({ err: { code: (err as { code?: string }).code, message: err.message } }, 'agent disconnected')
    else this.log.info('agent disconnected')
    for (const fn of this.onClosed.splice(0)) fn()
  }

  /**
   * Writes one control message; never throws. A message that cannot be encoded (too large, or a
   * value JSON cannot hold) is logged, and a `response` is replaced by an internal-error reply so
   * the agent's request still gets an answer.
   */
  send(message: RelayMessage): void {
    if (this.control === null) return
    let frame: Buffer
    try {
      frame = encodeMessage(message)
    } catch (err) {
      this.log.error({ code: 'PL_ERR_INTERNAL', type: message.type, err: { message: (err as Error).message } }, 'control message could not be encoded')
      if (message.type !== 'response') return
      frame = encodeMessage({ type: 'response', id: message.id, ok: false, code: 'PL_ERR_INTERNAL', message: 'internal error' })
    }
    this.control.write(frame)
  }

  private onStream(stream: MuxStream): void {
    stream.on('error', () => { /* reported where it matters; never crash on a stream */ })
    if (this.control === null) {
      this.control = stream
      this.runControl(stream)
      return
    }
    void this.onDataStream(stream)
  }

  private async onDataStream(stream: MuxStream): Promise<void> {
    let head
    try {
      head = StreamHead.parse(await readHead(stream, CONTROL_HEAD_TIMEOUT_MS))
    } catch (err) {
      this.log.warn({ err: { message: (err as Error).message } }, 'bad stream head from agent')
      stream.destroy()
      return
    }
    if (head.t !== 'forward') {
      stream.destroy()
      return
    }
    await this.ctx.forwards.handle(this, stream, head)
  }

  private runControl(stream: MuxStream): void {
    const decoder = new MessageDecoder()
    let hello = false
    stream.on('data', (chunk: Buffer) => {
      let messages: unknown[]
      try {
        messages = decoder.push(chunk)
      } catch (err) {
        this.protocolError((err as Error).message)
        return
      }
      for (const raw of messages) {
        const parsed = AgentMessage.safeParse(raw)
        if (!parsed.success) {
          this.protocolError(parsed.error.issues[0]?.message ?? 'invalid message')
          return
        }
        const msg = parsed.data
        if (!hello && msg.type !== 'hello') {
          this.protocolError('expected hello')
          return
        }
        this.dispatch(msg)
        hello = true
      }
    })
    stream.on('end', () => this.close(new PorchlightError('PL_ERR_LINK_LOST', ['control stream ended'])))
  }

  private readonly handlers: { [K in AgentMessage['type']]: (m: Extract<AgentMessage, { type: K }>) => void } = {
    hello: (m) => {
      if (m.version !== PROTOCOL_VERSION) {
        this.send({ type: 'notice', level: 'error', code: 'PL_ERR_PROTO_VERSION', message: `relay speaks protocol ${PROTOCOL_VERSION}` })
        this.close(new PorchlightError('PL_ERR_PROTO_VERSION', [m.version]))
        return
      }
      this.send({ type: 'welcome', version: PROTOCOL_VERSION, agent: this.agent, session: this.id, domain: this.ctx.config.domain })
      this.ctx.cluster?.tellMembers(this)
    },
    publish: (m) => {
      void this.ctx.tunnels.publish(this, m.tunnels).then(
        (results) => this.send({ type: 'published', results }),
        (err: unknown) => this.log.error({ err }, 'publish failed'),
      )
    },
    request: (m) => {
      void handleControlRequest(this, { routesOf: (agent) => this.ctx.registry.routesOf(agent), links: this.ctx.links, publicUrl: (host) => this.ctx.publicUrl(host) }, m).then((reply) => this.send(reply), (err: unknown) => this.log.error({ err }, 'control request failed'))
    },
  }

  private dispatch(msg: AgentMessage): void {
    // msg.type is one of the schema's literals; the own-property check keeps inherited names out anyway.
    if (!Object.hasOwn(this.handlers, msg.type)) return this.protocolError('unknown message type')
    const handler = this.handlers[msg.type] as (m: AgentMessage) => void
    handler(msg)
  }

  private protocolError(reason: string): void {
    this.log.warn({ reason }, 'control protocol error')
    this.close(new PorchlightError('PL_ERR_PROTO_BAD_MESSAGE', [reason]))
  }
}
