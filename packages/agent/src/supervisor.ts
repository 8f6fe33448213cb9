import { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import { PorchlightError, isPorchlightError, type ErrorCode } from '@porchlight/shared/errors'
import type { Logger } from '@porchlight/shared/log'
import type { MuxSession } from '@porchlight/shared/mux'
import { PROTOCOL_VERSION, type PublishResult, type TunnelSpec } from '@porchlight/shared/protocol'
import { Backoff, backoffMaxFromEnv } from './backoff.js'
import { ControlChannel } from './control-channel.js'
import type { RelayLinkOptions } from './relay-link.js'
import { startWakeDetector } from './wake-detector.js'

/** A session that lived this long was healthy: the next failure starts backoff from scratch. */
export const STABLE_SESSION_MS = 10_000
/** After a timer gap, the relay must answer a ping within this long or we reconnect. */
export const WAKE_PROBE_TIMEOUT_MS = 5_000

/** Errors that retrying cannot fix: the process ends with exit 1 (PRODUCT.md: auth errors exit 1). */
const FATAL: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'PL_ERR_AUTH_BAD_TOKEN', 'PL_ERR_AUTH_CERT_REJECTED', 'PL_ERR_AUTH_CERT_REQUIRED', 'PL_ERR_TLS_FILE', 'PL_ERR_PROTO_VERSION',
])

export function isFatalLinkError(err: unknown): err is PorchlightError {
  return isPorchlightError(err) && FATAL.has(err.code)
}

export type LinkState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'stopped' | 'failed'

export interface LinkStatus {
  state: LinkState
  relay: string
  agent: string | null
  session: string | null
  domain: string | null
  connectedAt: number | null
  /** Reconnect attempts since the last stable session (0 while connected). */
  attempt: number
  /** Delay before the pending reconnect attempt, and when it will happen (epoch ms). */
  nextDelayMs: number | null
  nextAttemptAt: number | null
  lastError: { code: string; message: string } | null
}

export interface SupervisorDeps {
  log: Logger
  dial: (options: RelayLinkOptions) => Promise<MuxSession>
  /** Current link settings (they change on reload). */
  link: () => Pick<RelayLinkOptions, 'relay' | 'token' | 'cert' | 'ca' | 'instance' | 'linkId'>
  /** Current set of tunnels to publish. */
  tunnels: () => TunnelSpec[]
  onPublished: (specs: TunnelSpec[], results: PublishResult[]) => void
  /** A stream the relay opened (visitor request or TCP connection). */
  onStream: (stream: Duplex) => void
  /** The link went down: published routes are gone until the next publish. */
  onDisconnected?: () => void
  agentVersion: string
  backoff?: Backoff
  env?: NodeJS.ProcessEnv
  now?: () => number
  wakeGapMs?: number
  wakeProbeTimeoutMs?: number
  keepAliveIntervalMs?: number
  keepAliveTimeoutMs?: number
  /** How long the relay has to answer hello/publish/requests (default 10 s). */
  controlTimeoutMs?: number
}

interface Current {
  session: MuxSession
  control: ControlChannel
  connectedAt: number
}

/**
 * The connect loop: dial, handshake on the control stream, publish, serve until the session
 * closes, back off (full jitter, reset after a stable session), repeat forever. Fatal auth errors
 * end the loop with the 'fatal' event. Events: 'connected', 'disconnected', 'fatal' (err).
 */
export class Supervisor extends EventEmitter {
  private readonly log: Logger
  private readonly backoff: Backoff
  private readonly now: () => number
  private state: LinkState = 'idle'
  private current: Current | null = null
  private welcome: { agent: string; session: string; domain: string } | null = null
  private lastError: { code: string; message: string } | null = null
  private nextDelayMs: number | null = null
  private nextAttemptAt: number | null = null
  private stopping = false
  private loop: Promise<void> | null = null
  private dialAbort: AbortController | null = null
  private wakeSleep: (() => void) | null = null
  private stopWake: (() => void) | null = null
  private replaced = false

  constructor(private readonly deps: SupervisorDeps) {
    super()
    this.log = deps.log.child({ component: 'link' })
    this.backoff = deps.backoff ?? new Backoff({ maxMs: backoffMaxFromEnv(deps.env) })
    this.now = deps.now ?? Date.now
  }

  start(): void {
    if (this.loop !== null) return
    this.stopWake = startWakeDetector({ onWake: (gapMs) => this.onWake(gapMs), ...wakeOptions(this.deps.wakeGapMs) })
    this.loop = this.run().catch((err: unknown) => {
      // The loop itself must never die silently.
      this.log.error({ err }, 'connect loop crashed')
      this.fail(err instanceof PorchlightError ? err : new PorchlightError('PL_ERR_INTERNAL', [], { cause: err }))
    })
  }

  /** Stop reconnecting; GoAway, let in-flight streams finish (waitIdle), then close. */
  async stop(graceMs: number, waitIdle: (timeoutMs: number) => Promise<void>): Promise<void> {
    if (this.stopping) return this.loop ?? undefined
    this.stopping = true
    this.stopWake?.()
    this.dialAbort?.abort()
    this.wakeSleep?.()
    const current = this.current
    if (current !== null) {
      try {
        current.session.goAway()
      } catch (err) {
        this.log.debug({ err }, 'goAway failed')
      }
      await waitIdle(graceMs)
      current.session.close()
    }
    await this.loop
    this.state = this.state === 'failed' ? 'failed' : 'stopped'
  }

  /** Re-publish the current tunnel set (after a reload); resolves with the results, or null when offline. */
  async republish(): Promise<PublishResult[] | null> {
    const current = this.current
    if (current === null) return null
    return this.publish(current)
  }

  /** Drop the current session so the loop redials with new link settings. */
  reconnect(reason: string): void {
    const current = this.current
    if (current === null) {
      this.wakeSleep?.()
      return
    }
    this.log.info({ reason }, 'reconnecting with new relay settings')
    current.session.close(new PorchlightError('PL_ERR_LINK_LOST', [reason]))
  }

  /** A control request to the relay (share links, status). */
  request(op: string, args: Record<string, unknown>): Promise<unknown> {
    const current = this.current
    if (current === null) return Promise.reject(new PorchlightError('PL_ERR_LINK_LOST', ['not connected to the relay']))
    return current.control.request(op, args)
  }

  status(): LinkStatus {
    return {
      state: this.state,
      relay: this.deps.link().relay,
      agent: this.welcome?.agent ?? null,
      session: this.current !== null ? this.welcome?.session ?? null : null,
      domain: this.welcome?.domain ?? null,
      connectedAt: this.current?.connectedAt ?? null,
      attempt: this.backoff.attempt,
      nextDelayMs: this.nextDelayMs,
      nextAttemptAt: this.nextAttemptAt,
      lastError: this.lastError,
    }
  }

  get session(): MuxSession | null {
    return this.current?.session ?? null
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      this.state = this.welcome === null && this.backoff.attempt === 0 ? 'connecting' : 'reconnecting'
      let reason: Error | undefined
      let connectedAt: number | null = null
      this.replaced = false
      try {
        const session = await this.dial()
        if (this.stopping) {
          session.close()
          break
        }
        connectedAt = this.now()
        reason = await this.serve(session, connectedAt)
      } catch (err) {
        reason = err instanceof Error ? err : new Error(String(err))
        if (isFatalLinkError(err)) {
          this.fail(err)
          return
        }
      }
      if (this.stopping) break
      this.lastError = errorSummary(reason)
      if (connectedAt !== null && this.now() - connectedAt > STABLE_SESSION_MS && !this.replaced) this.backoff.reset()
      const delayMs = this.backoff.next()
      this.nextDelayMs = delayMs
      this.nextAttemptAt = this.now() + delayMs
      this.state = 'reconnecting'
      if (connectedAt === null) this.log.warn({ err: reason }, 'cannot connect to the relay')
      this.log.info({ attempt: this.backoff.attempt, delayMs }, 'reconnecting')
      await this.sleep(delayMs)
      this.nextDelayMs = null
      this.nextAttemptAt = null
    }
    this.state = 'stopped'
  }

  private async dial(): Promise<MuxSession> {
    const abort = new AbortController()
    this.dialAbort = abort
    try {
      return await this.deps.dial({
        ...this.deps.link(),
        log: this.log,
        signal: abort.signal,
        ...(this.deps.keepAliveIntervalMs !== undefined ? { keepAliveIntervalMs: this.deps.keepAliveIntervalMs } : {}),
        ...(this.deps.keepAliveTimeoutMs !== undefined ? { keepAliveTimeoutMs: this.deps.keepAliveTimeoutMs } : {}),
      })
    } finally {
      this.dialAbort = null
    }
  }

  /** Handshake, publish, then wait for the session to end; resolves with why it ended. */
  private async serve(session: MuxSession, connectedAt: number): Promise<Error | undefined> {
    const closed = new Promise<Error | undefined>((resolve) => {
      if (session.closed) resolve(new PorchlightError('PL_ERR_MUX_CLOSED'))
      else session.once('close', (err?: Error) => resolve(err))
    })
    session.on('stream', (stream: Duplex) => this.deps.onStream(stream))
    const control = new ControlChannel(session.open(), this.log, this.deps.controlTimeoutMs)
    // Without its control stream a session is useless: losing one closes the other.
    control.on('close', (err?: Error) => {
      if (!session.closed) session.close(err ?? new PorchlightError('PL_ERR_LINK_LOST', ['control stream closed']))
    })
    control.on('notice', (notice: { level: 'info' | 'warn' | 'error'; code: string; message: string }) => {
      if (notice.code === 'PL_ERR_LINK_REPLACED') this.replaced = true
      // A lost lease comes from every relay of the cluster; the agent says it once itself.
      if (notice.code === 'PL_ERR_LEASE_LOST') this.log.debug({ code: notice.code }, `relay notice: ${notice.message}`)
      else this.log[notice.level]({ code: notice.code }, `relay notice: ${notice.message}`)
      this.emit('notice', notice)
    })
    const current: Current = { session, control, connectedAt }
    try {
      const welcome = await control.hello(this.deps.agentVersion, PROTOCOL_VERSION)
      // stop() during the handshake found no current session to close: close this one here.
      if (this.stopping) throw new PorchlightError('PL_ERR_LINK_LOST', ['agent stopping'])
      if (welcome.version !== PROTOCOL_VERSION) throw new PorchlightError('PL_ERR_PROTO_VERSION', [welcome.version])
      this.welcome = { agent: welcome.agent, session: welcome.session, domain: welcome.domain }
      this.current = current
      this.state = 'connected'
      this.lastError = null
      this.log.info({ agent: welcome.agent, session: welcome.session, domain: welcome.domain }, 'connected')
      this.emit('connected', this.welcome)
      await this.publish(current)
    } catch (err) {
      session.close(err instanceof Error ? err : undefined)
      if (isFatalLinkError(err)) {
        await closed
        this.detach(current)
        throw err
      }
    }
    const reason = await closed
    this.detach(current)
    if (!this.stopping) this.log.warn({ err: reason }, 'link lost')
    return reason ?? new PorchlightError('PL_ERR_LINK_LOST', ['session closed'])
  }

  private detach(current: Current): void {
    current.control.close()
    if (this.current === current) {
      this.current = null
      this.deps.onDisconnected?.()
      this.emit('disconnected')
    }
  }

  private async publish(current: Current): Promise<PublishResult[]> {
    const specs = this.deps.tunnels()
    const results = await current.control.publish(specs)
    if (this.current === current) this.deps.onPublished(specs, results)
    return results
  }

  private onWake(gapMs: number): void {
    const current = this.current
    this.log.info({ gapMs }, 'timer gap detected (sleep or pause); probing the relay')
    if (current === null) {
      this.wakeSleep?.() // retry now: the network may well be back
      return
    }
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new PorchlightError('PL_ERR_LINK_HEARTBEAT', [this.deps.wakeProbeTimeoutMs ?? WAKE_PROBE_TIMEOUT_MS])), this.deps.wakeProbeTimeoutMs ?? WAKE_PROBE_TIMEOUT_MS)
      timer.unref()
    })
    Promise.race([current.session.ping(), deadline]).then(
      (rttMs) => this.log.debug({ ms: rttMs }, 'relay answered the wake probe'),
      (err: unknown) => {
        if (this.current !== current) return
        this.log.warn({ err }, 'relay did not answer after a timer gap; reconnecting')
        current.session.close(err instanceof Error ? err : undefined)
      },
    ).finally(() => clearTimeout(timer))
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done(): void {
        clearTimeout(timer)
        resolve()
      }
      this.wakeSleep = () => {
        this.wakeSleep = null
        done()
      }
    })
  }

  private fail(err: PorchlightError): void {
    this.state = 'failed'
    this.lastError = errorSummary(err)
    this.stopping = true
    this.stopWake?.()
    this.emit('fatal', err)
  }
}

function wakeOptions(wakeGapMs: number | undefined): { gapMs?: number } {
  return wakeGapMs === undefined ? {} : { gapMs: wakeGapMs }
}

function errorSummary(err: Error | undefined): { code: string; message: string } | null {
  if (err === undefined) return null
  return { code: isPorchlightError(err) ? err.code : ((err as NodeJS.ErrnoException).code ?? 'PL_ERR_LINK_LOST'), message: err.message }
}
