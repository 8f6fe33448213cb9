import { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import { PorchlightError, type ErrorCode, codes } from '@porchlight/shared/errors'
import type { Logger } from '@porchlight/shared/log'
import { encodeMessage, handlerTable, lookupHandler, MessageDecoder, RelayMessage, type AgentMessage, type PublishResult, type TunnelSpec } from '@porchlight/shared/protocol'

type Welcome = Extract<RelayMessage, { type: 'welcome' }>
type Notice = Extract<RelayMessage, { type: 'notice' }>

/** How long the relay has to answer hello, publish or a request. */
export const CONTROL_TIMEOUT_MS = 10_000

interface Pending<T> {
  resolve: (value: T) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

/**
 * The agent's side of the control stream (the first stream it opens): length-prefixed JSON
 * messages validated with the RelayMessage schema, answers matched to what we asked. Events:
 * 'notice' (Notice), 'close' (err?) exactly once.
 */
export class ControlChannel extends EventEmitter {
  private readonly decoder = new MessageDecoder()
  private welcomeWaiter: Pending<Welcome> | null = null
  /** `published` answers arrive in the order the publishes were sent. */
  private readonly publishWaiters: Array<Pending<PublishResult[]>> = []
  private readonly requests = new Map<number, Pending<unknown>>()
  private nextRequestId = 1
  private closed = false

  constructor(private readonly stream: Duplex, private readonly log: Logger, private readonly timeoutMs = CONTROL_TIMEOUT_MS) {
    super()
    stream.on('data', (chunk: Buffer) => this.onData(chunk))
    stream.on('end', () => this.close(new PorchlightError('PL_ERR_LINK_LOST', ['control stream ended'])))
    stream.on('error', (err) => this.close(new PorchlightError('PL_ERR_LINK_LOST', [err.message], { cause: err })))
    stream.on('close', () => this.close(new PorchlightError('PL_ERR_LINK_LOST', ['control stream closed'])))
  }

  /** hello -> welcome. */
  hello(agentVersion: string, version: number): Promise<Welcome> {
    if (this.welcomeWaiter !== null) return Promise.reject(new Error('hello already sent'))
    return new Promise((resolve, reject) => {
      this.welcomeWaiter = this.pending(resolve, reject, 'hello')
      this.send({ type: 'hello', version, agent_version: agentVersion })
    })
  }

  /** publish -> published; resolves with one result per tunnel, in order. */
  publish(tunnels: TunnelSpec[]): Promise<PublishResult[]> {
    return new Promise((resolve, reject) => {
      this.publishWaiters.push(this.pending(resolve, reject, 'publish'))
      this.send({ type: 'publish', tunnels })
    })
  }

  /** request -> response; rejects with a PorchlightError carrying the relay's code. */
  request(op: string, args: Record<string, unknown>): Promise<unknown> {
    const id = this.nextRequestId++
    return new Promise((resolve, reject) => {
      this.requests.set(id, this.pending(resolve, reject, op, () => this.requests.delete(id)))
      this.send({ type: 'request', id, op, args })
    })
  }

  close(err?: Error): void {
    if (this.closed) return
    this.closed = true
    const reason = err ?? new PorchlightError('PL_ERR_LINK_LOST', ['control channel closed'])
    const waiters: Array<Pending<never>> = [
      ...(this.welcomeWaiter ? [this.welcomeWaiter] : []),
      ...this.publishWaiters.splice(0),
      ...this.requests.values(),
    ] as Array<Pending<never>>
    this.welcomeWaiter = null
    this.requests.clear()
    for (const w of waiters) {
      clearTimeout(w.timer)
      w.reject(reason)
    }
    if (!this.stream.destroyed) this.stream.destroy()
    this.emit('close', err)
  }

  get isClosed(): boolean {
    return this.closed
  }

  private send(message: AgentMessage): void {
    if (this.closed) throw new PorchlightError('PL_ERR_LINK_LOST', ['control channel closed'])
    this.stream.write(encodeMessage(message))
  }

  private pending<T>(resolve: (v: T) => void, reject: (e: Error) => void, what: string, cleanup?: () => void): Pending<T> {
    const timer = setTimeout(() => {
      cleanup?.()
      reject(new PorchlightError('PL_ERR_LINK_TIMEOUT', [what, this.timeoutMs]))
      // A relay that stops answering control messages is as good as gone.
      this.close(new PorchlightError('PL_ERR_LINK_TIMEOUT', [what, this.timeoutMs]))
    }, this.timeoutMs)
    timer.unref()
    return {
      resolve: (v) => {
        clearTimeout(timer)
        cleanup?.()
        resolve(v)
      },
      reject: (e) => {
        clearTimeout(timer)
        cleanup?.()
        reject(e)
      },
      timer,
    }
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return
    let messages: unknown[]
    try {
      messages = this.decoder.push(chunk)
    } catch (err) {
      this.close(err as Error)
      return
    }
    for (const raw of messages) {
      const parsed = RelayMessage.safeParse(raw)
      if (!parsed.success) {
        const issue = parsed.error.issues[0]
        this.close(new PorchlightError('PL_ERR_PROTO_BAD_MESSAGE', [`${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim()]))
        return
      }
      const handler = lookupHandler(handlers, parsed.data.type)
      if (handler === undefined) return this.protocolError('unknown message type')
      handler(this, parsed.data as never)
      if (this.closed) return
    }
  }

  /** @internal handler-table hooks */
  onWelcome(m: Welcome): void {
    const w = this.welcomeWaiter
    if (w === null) return this.protocolError('unexpected welcome')
    w.resolve(m)
  }

  /** @internal */
  onPublished(m: Extract<RelayMessage, { type: 'published' }>): void {
    const w = this.publishWaiters.shift()
    if (w === undefined) return this.protocolError('unexpected published')
    w.resolve(m.results)
  }

  /** @internal */
  onResponse(m: Extract<RelayMessage, { type: 'response' }>): void {
    const w = this.requests.get(m.id)
    if (w === undefined) {
      this.log.debug({ id: m.id }, 'response to an unknown or timed-out request')
      return
    }
    if (m.ok) {
      w.resolve(m.result ?? null)
      return
    }
    const code = m.code !== undefined && m.code in codes ? (m.code as ErrorCode) : 'PL_ERR_INTERNAL'
    const err = new PorchlightError(code, [], { details: { relayCode: m.code } })
    // The relay's own wording is more precise than our template filled with nothing.
    if (m.message !== undefined) Object.defineProperty(err, 'message', { value: m.message })
    w.reject(err)
  }

  /** @internal */
  onNotice(m: Notice): void {
    this.emit('notice', m)
  }

  private protocolError(what: string): void {
    this.close(new PorchlightError('PL_ERR_PROTO_BAD_MESSAGE', [what]))
  }
}

/** Adding a relay message type without a handler fails tsc (STYLE.md pattern 5). */
const handlers = handlerTable({
  welcome: (c, m) => c.onWelcome(m),
  published: (c, m) => c.onPublished(m),
  response: (c, m) => c.onResponse(m),
  notice: (c, m) => c.onNotice(m),
} satisfies { [K in RelayMessage['type']]: (c: ControlChannel, m: Extract<RelayMessage, { type: K }>) => void })
