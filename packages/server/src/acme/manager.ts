import { readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import https from 'node:https'
import tls, { type SecureContext } from 'node:tls'
import type acme from 'acme-client'
import { Counter, Gauge, type Registry as PromRegistry } from 'prom-client'
import type { AcmeChallenge, RelayAcme } from '@porchlight/shared/config'
import { isLoopbackHost } from '@porchlight/shared/config'
import type { Logger } from '@porchlight/shared/log'
import { ChallengeHooks } from './challenge-hooks.js'
import { ChallengeAnswers } from './challenges.js'
import { certificateTimes, ClusterOrders, type StoredCertificate } from './cluster-orders.js'
import { orderSlot, renewAt, retryDelayMs } from './schedule.js'
import type { AcmeSharedState, OrderLock } from './shared-state.js'
import { AcmeStore } from './store.js'

/**
 * acme-client and what it pulls in (axios, an X.509 library) are ~20 MiB of RSS: loaded at the
 * first order, so a relay without ACME, or with every certificate already stored, never carries them.
 */
let acmeClient: Promise<typeof acme> | null = null
const loadAcmeClient = (): Promise<typeof acme> => (acmeClient ??= import('acme-client').then((m) => m.default))

/** Most names whose expiry `porchlight_acme_certificate_expiry_seconds{name}` shows. */
const EXPIRY_LABEL_CAP = 200
/** setTimeout fires at once past 2^31-1 ms; longer waits are taken in steps of this. */
const MAX_TIMER_MS = 24 * 60 * 60_000
export interface AcmeManagerDeps {
  acme: () => RelayAcme
  stateDir: string
  /** listen.public's host: `challenge: auto` uses http-01 only when it is reachable from other machines. */
  publicHost: () => string
  /** True when a configured `public_tls.certs` entry already covers the name (no order needed). */
  staticCovers: (name: string) => boolean
  /** True while some agent's route (live or offline) holds the name: renewals stop for dropped names. */
  isPublished: (name: string) => boolean
  /** Added to every certificate's context (the relay CA, for visitors' client certificates). */
  contextOptions: tls.SecureContextOptions
  /** A certificate for `name` is now served (first issue or renewal). */
  onReady: (name: string) => void
  /**
   * With `cluster:`: the ACME state all members share in Redis (account, certificates, challenge
   * answers, one order lock per name). Null or absent: this relay alone, files in `state:` only.
   */
  shared?: AcmeSharedState | null
  /** With `cluster:`: tells the other members that a certificate for `name` is in Redis (the stream). */
  announce?: (name: string, serial: string) => void
  log: Logger
  metrics: PromRegistry
  now?: () => number
  random?: () => number
}

interface Held {
  context: SecureContext
  notBefore: number
  notAfter: number
  serial: string
  renewTimer: NodeJS.Timeout | null
}

/**
 * Certificates from an ACME CA (RFC 8555, with acme-client) for names the relay may serve: those
 * in `acme.names` and hostnames agents publish under their policy (`want`). Never for a name a
 * visitor merely asks for: the SNI callback only reads what is held here. One order at a time,
 * at most `max_orders_per_hour`, a growing wait per name after a failure, renewal at two thirds of
 * the lifetime (or `renew_before_expiry_s`), files in `state:` so restarts reuse them.
 */
export class AcmeManager {
  readonly answers = new ChallengeAnswers()
  private readonly held = new Map<string, Held>()
  /** Names waiting for an order, in arrival order; `wanted` says why each is held. */
  private readonly queue: string[] = []
  private readonly queued = new Set<string>()
  private readonly failures = new Map<string, { count: number; retryAt: number }>()
  /** Cluster: names waiting for another member's order, or for Redis, until the time given. */
  private readonly deferred = new Map<string, number>()
  /** With `cluster:`: one order per name across the members, certificates shared through Redis. */
  private readonly cluster: ClusterOrders | null
  private readonly hooks: ChallengeHooks
  private readonly orderTimes: number[] = []
  private readonly store: AcmeStore
  private readonly now: () => number
  private readonly random: () => number
  private readonly log: Logger
  private client: acme.Client | null = null
  private running = false
  private closed = false
  private wake: NodeJS.Timeout | null = null
  private current: string | null = null
  private readonly orders: Counter<'result'>

  constructor(private readonly deps: AcmeManagerDeps) {
    this.store = new AcmeStore(deps.stateDir, deps.acme().directory)
    this.now = deps.now ?? Date.now
    this.random = deps.random ?? Math.random
    this.log = deps.log.child({ component: 'acme' })
    const registers = [deps.metrics]
    this.orders = new Counter({ name: 'porchlight_acme_orders_total', help: 'ACME orders finished, by result (valid, failed)', labelNames: ['result'] as const, registers })
    const held = this.held
    const now = this.now
    new Gauge({ name: 'porchlight_acme_certificates_valid', help: 'ACME certificates held and not expired', registers, collect() { this.set([...held.values()].filter((h) => h.notAfter > now()).length) } })
    new Gauge({
      name: 'porchlight_acme_certificate_expiry_seconds', help: 'Seconds until each ACME certificate expires', labelNames: ['name'] as const, registers,
      collect() {
        this.reset()
        let n = 0
        for (const [name, h] of held) if (n++ < EXPIRY_LABEL_CAP) this.set({ name }, Math.round((h.notAfter - now()) / 1000))
      },
    })
    const queue = this.queue
    new Gauge({ name: 'porchlight_acme_orders_waiting', help: 'Names waiting for an ACME order (cap, retry wait or another order in flight)', registers, collect() { this.set(queue.length) } })
    this.cluster = deps.shared ? new ClusterOrders(deps.shared, {
      log: this.log,
      now: this.now,
      held: (name) => this.held.get(name) ?? null,
      adopt: (name, stored) => this.adopt(name, stored),
      isFresh: (times) => this.now() < renewAt(times.notBefore, times.notAfter, this.deps.acme().renew_before_expiry_s, 1),
      mayServe: (name) => this.mayServe(name),
      closed: () => this.closed,
      ...(deps.announce ? { announce: deps.announce } : {}),
    }) : null
    this.hooks = new ChallengeHooks({
      answers: this.answers,
      shared: deps.shared ?? null,
      dnsHook: () => this.deps.acme().dns_hook,
      alpnCertificate: async (authz, keyAuthorization) => (await loadAcmeClient()).crypto.createAlpnCertificate(authz, keyAuthorization),
      log: this.log,
    })
  }

  /** Loads stored certificates for `acme.names` and orders the missing ones. */
  start(): void {
    for (const name of this.deps.acme().names) this.want(name, 'acme.names')
  }

  /**
   * A name the relay may serve (published under policy, or configured): served from the stored
   * certificate when there is a good one, else ordered. Names a configured or held wildcard
   * covers, or a `public_tls.certs` entry covers, need nothing.
   */
  want(name: string, why: 'acme.names' | 'published'): void {
    if (this.closed || this.held.has(name) || this.queued.has(name) || this.current === name) return
    if (this.deps.staticCovers(name)) return
    if (!name.startsWith('*.') && this.wildcardFor(name) !== null) return
    if (this.loadStored(name)) {
      // The local file is a cache: a member may have renewed the name while this relay was away.
      if (this.cluster) void this.cluster.refresh(name)
      return
    }
    this.log.info({ host: name, why }, 'acme: certificate needed')
    this.enqueue(name)
  }

  /** True when a held certificate (exact, or a wildcard one label up) covers `name`. */
  covers(name: string): boolean {
    return this.contextFor(name) !== undefined
  }

  /** The context for a handshake's SNI: the exact name's certificate, else the wildcard's. */
  contextFor(servername: string): SecureContext | undefined {
    const name = servername.toLowerCase().replace(/\.$/, '')
    const exact = this.held.get(name)
    if (exact && exact.notAfter > this.now()) return exact.context
    const dot = name.indexOf('.')
    const wild = dot === -1 ? undefined : this.held.get(`*.${name.slice(dot + 1)}`)
    return wild && wild.notAfter > this.now() ? wild.context : undefined
  }

  /** Serial of the certificate held for a name (tests and the admin view). */
  serialOf(name: string): string | null {
    return this.held.get(name)?.serial ?? null
  }

  /**
   * The public HTTP listener's hook before routing: HTTP-01 validation requests for this relay's
   * own open orders, and in a cluster for any member's (the CA's request may reach any relay),
   * looked up in Redis only for a name this relay may serve. True or a promise of true: answered.
   */
  answerHttp(req: IncomingMessage, res: ServerResponse): boolean | Promise<boolean> {
    if (this.answers.answerHttp(req, res)) return true
    return this.cluster?.answerHttp(req, res) ?? false
  }

  /**
   * The ALPN callback's question: should a handshake offering acme-tls/1 for `host` get it? Yes
   * for this relay's own open challenge, and in a cluster for a name it may serve (the answer is
   * then looked up in Redis by alpnContext).
   */
  mayAnswerAlpn(host: string): boolean {
    return this.answers.hasAlpn(host) || (this.cluster !== null && this.mayServe(host))
  }

  /** The TLS-ALPN-01 challenge certificate for a validation handshake, from this relay or the cluster. */
  async alpnContext(host: string): Promise<SecureContext | undefined> {
    return this.answers.alpnContext(host) ?? await this.cluster?.alpnContext(host)
  }

  /**
   * The stream says a member stored a certificate for `name`: served here from now on when this
   * relay wants the name and holds nothing newer (a name it does not serve is read when published).
   */
  onClusterCertificate(name: string, serial: string): void {
    if (!this.cluster || this.closed || this.held.get(name)?.serial === serial) return
    if (!this.held.has(name) && !this.queued.has(name) && this.current !== name && !this.mayServe(name)) return
    void this.cluster.refresh(name)
  }

  close(): void {
    this.closed = true
    if (this.wake) clearTimeout(this.wake)
    for (const h of this.held.values()) if (h.renewTimer) clearTimeout(h.renewTimer)
  }

  /** A name this relay may hold a certificate for: configured, or published by an agent under its policy. */
  private mayServe(name: string): boolean {
    return this.deps.acme().names.includes(name) || this.deps.isPublished(name)
  }

  /** Serves a certificate a member stored in Redis, keeps it in the local cache and stops waiting for the name. */
  private adopt(name: string, stored: StoredCertificate): void {
    const h = this.install(name, stored.cert, stored.key)
    try {
      this.store.save(name, stored.cert, stored.key)
    } catch (err) {
      this.log.warn({ host: name, err: { message: (err as Error).message } }, 'acme: local certificate cache not written')
    }
    const i = this.queue.indexOf(name)
    if (i !== -1) this.queue.splice(i, 1)
    this.queued.delete(name)
    this.failures.delete(name)
    this.deferred.delete(name)
    this.log.info({ host: name, serial: h.serial, not_after: new Date(h.notAfter).toISOString() }, 'acme: using the certificate from the cluster')
    this.deps.onReady(name)
  }

  private wildcardFor(name: string): string | null {
    const dot = name.indexOf('.')
    if (dot === -1) return null
    const wild = `*.${name.slice(dot + 1)}`
    return this.held.has(wild) || this.deps.acme().names.includes(wild) ? wild : null
  }

  private challengeFor(name: string): AcmeChallenge {
    if (name.startsWith('*.')) return 'dns-01'
    const c = this.deps.acme().challenge
    if (c !== 'auto') return c
    return isLoopbackHost(this.deps.publicHost()) ? 'tls-alpn-01' : 'http-01'
  }

  private loadStored(name: string): boolean {
    let stored
    try {
      stored = this.store.read(name)
    } catch (err) {
      this.log.warn({ host: name, err }, 'acme: stored certificate unreadable; ordering a new one')
      return false
    }
    if (!stored) return false
    try {
      const h = this.install(name, stored.cert, stored.key)
      if (h.notAfter <= this.now()) return false
      this.log.info({ host: name, serial: h.serial, not_after: new Date(h.notAfter).toISOString() }, 'acme: using the stored certificate')
      return true
    } catch (err) {
      this.log.warn({ host: name, err }, 'acme: stored certificate unusable; ordering a new one')
      return false
    }
  }

  /** Serves a certificate from now on (new handshakes; open connections keep theirs) and plans its renewal. */
  private install(name: string, certPem: Buffer, keyPem: Buffer): Held {
    const times = certificateTimes(certPem)
    const context = tls.createSecureContext({ ...this.deps.contextOptions, cert: certPem, key: keyPem })
    const old = this.held.get(name)
    if (old?.renewTimer) clearTimeout(old.renewTimer)
    const h: Held = { context, ...times, renewTimer: null }
    this.held.set(name, h)
    const at = renewAt(h.notBefore, h.notAfter, this.deps.acme().renew_before_expiry_s, this.random())
    this.scheduleRenewal(name, h, at)
    return h
  }

  private scheduleRenewal(name: string, h: Held, at: number): void {
    const delay = Math.max(0, at - this.now())
    h.renewTimer = setTimeout(() => {
      h.renewTimer = null
      if (this.closed || this.held.get(name) !== h) return
      if (delay > MAX_TIMER_MS) return this.scheduleRenewal(name, h, at)
      if (!this.deps.acme().names.includes(name) && !this.deps.isPublished(name)) {
        this.log.info({ host: name }, 'acme: not renewing; no agent publishes this name any more')
        return
      }
      this.log.info({ host: name, not_after: new Date(h.notAfter).toISOString() }, 'acme: renewing')
      this.enqueue(name)
    }, Math.min(delay, MAX_TIMER_MS))
    h.renewTimer.unref()
  }

  private enqueue(name: string): void {
    if (this.queued.has(name)) return
    this.queued.add(name)
    this.queue.push(name)
    void this.pump()
  }

  /** Runs orders one at a time while the cap and each name's retry wait allow; sleeps until the next may start. */
  private async pump(): Promise<void> {
    if (this.running || this.closed) return
    this.running = true
    try {
      for (;;) {
        if (this.closed || this.queue.length === 0) return
        const now = this.now()
        const index = this.queue.findIndex((n) => this.readyAt(n, 0) <= now)
        const slot = orderSlot(this.orderTimes, now, this.deps.acme().max_orders_per_hour)
        if (index === -1 || !slot.ok) {
          const nextRetry = Math.min(...this.queue.map((n) => this.readyAt(n, now)))
          const at = slot.ok ? nextRetry : Math.max(slot.at, nextRetry)
          if (!slot.ok) this.log.warn({ waiting: this.queue.length, until: new Date(at).toISOString() }, 'acme: hourly order cap reached; waiting')
          this.sleepUntil(at)
          return
        }
        const name = this.queue.splice(index, 1)[0]!
        this.queued.delete(name)
        this.current = name
        try {
          const claim = this.cluster ? await this.cluster.claim(name, this.deferred.has(name)) : null
          if (claim?.do === 'order' && this.closed) await claim.lock.release()
          if (this.closed) return
          if (claim && claim.do !== 'served' && claim.backoff) this.failures.set(name, claim.backoff)
          if (claim?.do === 'served') continue
          if (claim?.do === 'wait') {
            this.deferred.set(name, this.now() + claim.ms)
            this.enqueue(name)
            continue
          }
          this.deferred.delete(name)
          this.orderTimes.push(this.now())
          await this.order(name, claim?.lock ?? null)
        } finally {
          this.current = null
        }
      }
    } finally {
      this.running = false
    }
  }

  /** When a queued name may be tried: after its failure backoff and any cluster wait (`fallback` when neither). */
  private readyAt(name: string, fallback: number): number {
    return Math.max(this.failures.get(name)?.retryAt ?? fallback, this.deferred.get(name) ?? fallback)
  }

  private sleepUntil(at: number): void {
    if (this.wake) clearTimeout(this.wake)
    this.wake = setTimeout(() => {
      this.wake = null
      void this.pump()
    }, Math.min(MAX_TIMER_MS, Math.max(0, at - this.now())))
    this.wake.unref()
  }

  /** One order; `lock` is this member's cluster lock for the name (released at the end), null without a cluster. */
  private async order(name: string, lock: OrderLock | null): Promise<void> {
    const challenge = this.challengeFor(name)
    const started = performance.now()
    this.log.info({ host: name, challenge }, 'acme: ordering a certificate')
    try {
      const client = await this.accountClient()
      const lib = await loadAcmeClient()
      const [key, csr] = await lib.crypto.createCsr({ altNames: [name] }, await lib.crypto.createPrivateEcdsaKey())
      const cert = await client.auto({
        csr,
        email: this.deps.acme().email,
        termsOfServiceAgreed: true,
        challengePriority: [challenge],
        // acme-client's own pre-check would resolve the name from here; the CA's check is the one that counts.
        skipChallengeVerification: true,
        challengeCreateFn: (authz, ch, keyAuthorization) => this.hooks.present(authz, ch, keyAuthorization),
        challengeRemoveFn: (authz, ch, keyAuthorization) => this.hooks.cleanup(authz, ch, keyAuthorization),
      })
      if (this.closed) return
      const certPem = Buffer.from(cert)
      this.store.save(name, certPem, key)
      const h = this.install(name, certPem, key)
      this.failures.delete(name)
      this.orders.inc({ result: 'valid' })
      this.log.info({ host: name, challenge, serial: h.serial, not_after: new Date(h.notAfter).toISOString(), ms: Math.round(performance.now() - started) }, 'acme: certificate issued')
      // Stored for the members before the lock goes, so a member's re-check under the lock finds it.
      if (this.cluster) await this.cluster.share(name, { cert: certPem, key }, h, () => this.held.get(name) === h)
      this.deps.onReady(name)
    } catch (err) {
      if (this.closed) return
      const count = (this.failures.get(name)?.count ?? 0) + 1
      const delay = retryDelayMs(count)
      this.failures.set(name, { count, retryAt: this.now() + delay })
      // The members wait out the same backoff instead of trying the name in turn.
      await this.cluster?.saveBackoff(name, { count, retryAt: this.now() + delay })
      this.orders.inc({ result: 'failed' })
      this.log.warn({ host: name, challenge, err: { message: (err as Error).message }, failures: count, retry_in_s: Math.round(delay / 1000), ms: Math.round(performance.now() - started) }, 'acme: order failed')
      this.enqueue(name)
    } finally {
      await lock?.release()
    }
  }

  private async accountClient(): Promise<acme.Client> {
    if (this.client) return this.client
    const lib = await loadAcmeClient()
    const settings = this.deps.acme()
    if (settings.directory_ca) {
      // acme-client talks through its own axios instance; trust the extra CA for the directory only.
      lib.axios.defaults.httpsAgent = new https.Agent({ ca: [...tls.rootCertificates, readFileSync(settings.directory_ca, 'utf8')] })
    }
    let accountKey = this.store.readAccountKey()
    if (this.cluster) {
      const key = await this.cluster.accountKey(accountKey, () => lib.crypto.createPrivateEcdsaKey())
      if (!accountKey?.equals(key)) this.store.writeAccountKey(key)
      accountKey = key
    } else if (!accountKey) {
      accountKey = await lib.crypto.createPrivateEcdsaKey()
      this.store.writeAccountKey(accountKey)
      this.log.info({ dir: this.store.dir }, 'acme: new account key written')
    }
    const client = new lib.Client({ directoryUrl: settings.directory, accountKey, backoffAttempts: 15, backoffMin: 1000, backoffMax: 10_000 })
    await client.createAccount({ termsOfServiceAgreed: true, contact: [`mailto:${settings.email}`] })
    this.log.info({ directory: settings.directory, account: client.getAccountUrl() }, 'acme: account ready')
    this.client = client
    return client
  }
}
