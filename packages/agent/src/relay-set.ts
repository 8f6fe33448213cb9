import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { Logger } from '@porchlight/shared/log'
import type { MuxSession } from '@porchlight/shared/mux'
import { CLUSTER_MEMBERS_NOTICE, type PublishResult } from '@porchlight/shared/protocol'
import { PorchlightError } from '@porchlight/shared/errors'
import { Supervisor, type LinkStatus, type SupervisorDeps } from './supervisor.js'

/** Members one relay may name (the notice is bounded too); more are ignored. */
const MAX_MEMBERS = 64
const MEMBER_WORD = /^([a-z0-9][a-z0-9_-]{0,31})=(wss?:\/\/\S{1,900})$/

/** One link of the set, as the status API shows it. */
export interface LinkSummary {
  /** The relay's member id (null until the relay said, or when it is no cluster member). */
  member: string | null
  relay: string
  state: LinkStatus['state']
}

export type RelaySetDeps = SupervisorDeps

/**
 * The agent's links: one to the configured relay and, once that relay says it is a cluster member
 * (CLUSTER_MEMBERS_NOTICE), one to every other member at its advertised URL, each with its own
 * supervisor and backoff. The first link then redials its member's advertised URL, so every
 * member holds exactly one link of this process (each link sends its own link id; a relay refuses
 * a second one). Without a cluster this is one supervisor, as before. Events as a Supervisor's:
 * 'connected' when the first link is up, 'disconnected' when the last one is down, 'notice', 'fatal'.
 */
export class RelaySet extends EventEmitter {
  private readonly seed: Supervisor
  /** The seed's member id and advertised URL, once its relay named them. */
  private seedMember: { id: string; url: string } | null = null
  private readonly others = new Map<string, { supervisor: Supervisor; url: string }>()
  private readonly log: Logger
  private started = false
  private stopping = false

  constructor(private readonly deps: RelaySetDeps) {
    super()
    this.log = deps.log.child({ component: 'links' })
    this.seed = this.supervisor(() => this.seedMember?.url ?? deps.link().relay)
  }

  start(): void {
    this.started = true
    this.seed.start()
  }

  async stop(graceMs: number, waitIdle: (timeoutMs: number) => Promise<void>): Promise<void> {
    this.stopping = true
    await Promise.all(this.all().map((s) => s.stop(graceMs, waitIdle)))
  }

  /** Publishes again on every live link; resolves with the first link's results (null when all are down). */
  async republish(): Promise<PublishResult[] | null> {
    const results = await Promise.all(this.all().map((s) => s.republish().catch((err: unknown) => {
      this.log.debug({ err }, 're-publish on one link failed')
      return null
    })))
    return results.find((r) => r !== null) ?? null
  }

  /** New link settings (reload): every link redials; the member list is learned again. */
  reconnect(reason: string): void {
    this.seedMember = null
    for (const [id, o] of this.others) {
      this.others.delete(id)
      void o.supervisor.stop(0, () => Promise.resolve())
    }
    this.seed.reconnect(reason)
  }

  /** A control request on one live link (the cluster shares what it changes). */
  request(op: string, args: Record<string, unknown>): Promise<unknown> {
    const live = this.all().find((s) => s.session !== null)
    if (live === undefined) return Promise.reject(new PorchlightError('PL_ERR_LINK_LOST', ['not connected to the relay']))
    return live.request(op, args)
  }

  /** The first live link's status (else the seed's), with every link's state. */
  status(): LinkStatus & { links: LinkSummary[] } {
    const live = this.all().find((s) => s.status().state === 'connected') ?? this.seed
    return { ...live.status(), links: this.links() }
  }

  /** A live session for forwards (any member serves them). */
  get session(): MuxSession | null {
    for (const s of this.all()) if (s.session !== null) return s.session
    return null
  }

  links(): LinkSummary[] {
    return [
      { member: this.seedMember?.id ?? null, relay: this.seedMember?.url ?? this.deps.link().relay, state: this.seed.status().state },
      ...[...this.others].map(([id, o]) => ({ member: id, relay: o.url, state: o.supervisor.status().state })),
    ]
  }

  private all(): Supervisor[] {
    return [this.seed, ...[...this.others.values()].map((o) => o.supervisor)]
  }

  private supervisor(relay: () => string): Supervisor {
    const linkId = randomBytes(9).toString('base64url')
    const s = new Supervisor({
      ...this.deps,
      link: () => ({ ...this.deps.link(), relay: relay(), linkId }),
      onPublished: (specs, results) => this.deps.onPublished(specs, results),
      onDisconnected: () => {
        if (this.all().every((x) => x === s || x.session === null)) this.deps.onDisconnected?.()
      },
    })
    s.on('connected', (welcome) => {
      if (this.all().filter((x) => x.status().state === 'connected').length === 1) this.emit('connected', welcome)
    })
    s.on('disconnected', () => {
      if (this.all().every((x) => x.session === null)) this.emit('disconnected')
    })
    s.on('fatal', (err: PorchlightError) => this.emit('fatal', err))
    s.on('notice', (notice: { code: string; message: string }) => {
      if (notice.code === CLUSTER_MEMBERS_NOTICE) this.onMembers(s, notice.message)
      else this.emit('notice', notice)
    })
    return s
  }

  /** `self=ID ID=URL ...` from one link's relay: link to members not linked yet, drop gone ones that are down. */
  private onMembers(from: Supervisor, message: string): void {
    if (this.stopping) return
    const words = message.split(' ')
    const self = /^self=([a-z0-9][a-z0-9_-]{0,31})$/.exec(words[0] ?? '')?.[1]
    const members = new Map<string, string>()
    for (const w of words.slice(1, MAX_MEMBERS + 1)) {
      const m = MEMBER_WORD.exec(w)
      if (m) members.set(m[1]!, m[2]!)
    }
    if (self === undefined || !members.has(self)) return
    if (from === this.seed && this.seedMember === null) {
      this.seedMember = { id: self, url: members.get(self)! }
      this.log.info({ member: self, members: [...members.keys()] }, 'relay is a cluster member; linking to every member')
    }
    for (const [id, url] of members) {
      if (id === this.seedMember?.id) continue
      const known = this.others.get(id)
      if (known !== undefined) {
        known.url = url
        continue
      }
      const entry: { url: string; supervisor: Supervisor } = { url, supervisor: this.supervisor(() => entry.url) }
      this.others.set(id, entry)
      if (this.started) entry.supervisor.start()
    }
    // A member the relay no longer lists is dropped once its link is down (a live one keeps serving).
    for (const [id, o] of this.others) {
      if (members.has(id) || o.supervisor.session !== null) continue
      this.others.delete(id)
      this.log.info({ member: id }, 'cluster member gone; no longer linking to it')
      void o.supervisor.stop(0, () => Promise.resolve())
    }
  }
}
