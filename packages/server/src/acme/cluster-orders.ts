import { X509Certificate } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import tls, { type SecureContext } from 'node:tls'
import type { Logger } from '@porchlight/shared/log'
import { challengeToken, requestHost, writeKeyAuthorization } from './challenges.js'
import type { AcmeSharedState, OrderLock } from './shared-state.js'

/** While another member holds a name's order lock, look for its certificate this often. */
export const LOCK_WAIT_MS = 2_000
/** An order that needs Redis (lock, re-check) and cannot reach it waits this long, then asks again. */
export const REDIS_WAIT_MS = 5_000
/**
 * A certificate issued while Redis was away is offered to it again this often: well within
 * REDIS_WAIT_MS, so it is back in Redis before a waiting member asks again.
 */
const SHARE_RETRY_MS = 1_000

export interface StoredCertificate {
  cert: Buffer
  key: Buffer
}

export interface CertificateTimes {
  notBefore: number
  notAfter: number
  serial: string
}

export interface Backoff {
  count: number
  retryAt: number
}

/** What the manager lends: its held certificates and its rules. */
export interface ClusterOrdersHost {
  log: Logger
  now: () => number
  /** The certificate held for `name`, or null. */
  held(name: string): CertificateTimes | null
  /** Serves `stored` from now on and stops waiting for the name; throws when it is unusable. */
  adopt(name: string, stored: StoredCertificate): void
  /** Not yet at the earliest moment any member would renew it. */
  isFresh(times: CertificateTimes): boolean
  /** A name this relay may hold a certificate for (configured, or published under policy). */
  mayServe(name: string): boolean
  closed(): boolean
  /** Tells the members a certificate for `name` is in Redis (the stream entry). */
  announce?: (name: string, serial: string) => void
}

/** What the manager does next about a queued name (ClusterOrders.claim). */
export type Claim =
  | { do: 'served' }
  | { do: 'wait'; ms: number; backoff: Backoff | null }
  | { do: 'order'; lock: OrderLock; backoff: Backoff | null }

/**
 * The cluster's side of ACME (with `cluster:`): before ordering, a fresh certificate already in
 * Redis is used; otherwise the name's lock is taken and Redis looked at again, so the cluster
 * places one order per name; while another member orders, or Redis does not answer, the name
 * waits (never an order without the lock). Issued certificates go to Redis and onto the stream;
 * validation requests for any member's open challenge are answered from Redis.
 */
export class ClusterOrders {
  constructor(readonly state: AcmeSharedState, private readonly host: ClusterOrdersHost) {}

  /**
   * An HTTP-01 validation request this relay has no local answer for: looked up in Redis, only for
   * a name this relay may serve. False (route as usual) or a promise of whether it was answered.
   */
  answerHttp(req: IncomingMessage, res: ServerResponse): false | Promise<boolean> {
    const token = challengeToken(req)
    const name = requestHost(req)
    if (token === null || !this.host.mayServe(name)) return false
    return this.state.getHttp(token).then((entry) => {
      if (!entry || entry.host !== name || res.headersSent) return false
      writeKeyAuthorization(req, res, entry.keyAuthorization)
      this.host.log.info({ host: name }, 'acme: http-01 challenge answered from the cluster')
      return true
    }, () => false)
  }

  /** The TLS-ALPN-01 challenge certificate a member stored for `name`, for a validation handshake. */
  async alpnContext(name: string): Promise<SecureContext | undefined> {
    if (!this.host.mayServe(name)) return undefined
    const challenge = await this.state.getAlpn(name).catch(() => null)
    if (!challenge) return undefined
    this.host.log.info({ host: name }, 'acme: tls-alpn-01 challenge answered from the cluster')
    return tls.createSecureContext({ key: challenge.key, cert: challenge.cert })
  }

  /** Serves the cluster's certificate for `name` when it is newer than the one held (after a restart, or a member's renewal). */
  async refresh(name: string): Promise<void> {
    try {
      const stored = await this.state.readCertificate(name)
      if (!stored || this.host.closed()) return
      const times = certificateTimes(stored.cert)
      const held = this.host.held(name)
      if (times.notAfter <= this.host.now() || (held && (held.serial === times.serial || held.notAfter >= times.notAfter))) return
      this.host.adopt(name, stored)
    } catch (err) {
      this.host.log.warn({ code: 'PL_ERR_CLUSTER_REDIS', host: name, err: { message: (err as Error).message } }, 'acme: cannot read the cluster\'s certificate; keeping the one held')
    }
  }

  /**
   * May this relay order `name` now? Served when a fresh certificate is in Redis; the lock when
   * this member took it and Redis still has none after taking it; else how long to wait (another
   * member orders it, the cluster's failure backoff runs, or Redis does not answer). `waiting`:
   * the name already waited once (the "another relay is ordering" line is said once).
   */
  async claim(name: string, waiting: boolean): Promise<Claim> {
    try {
      if (await this.adoptIfFresh(name)) return { do: 'served' }
      const backoff = await this.state.readBackoff(name)
      if (backoff && backoff.retryAt > this.host.now()) return { do: 'wait', ms: backoff.retryAt - this.host.now(), backoff }
      const lock = await this.state.lock(name)
      if (lock === null) {
        if (!waiting) this.host.log.info({ host: name }, 'acme: another relay is ordering this name; waiting for its certificate')
        return { do: 'wait', ms: LOCK_WAIT_MS, backoff }
      }
      try {
        if (await this.adoptIfFresh(name)) {
          await lock.release()
          return { do: 'served' }
        }
      } catch (err) {
        await lock.release()
        throw err
      }
      return { do: 'order', lock, backoff }
    } catch (err) {
      this.host.log.warn({ code: 'PL_ERR_CLUSTER_REDIS', host: name, err: { message: (err as Error).message }, retry_in_s: REDIS_WAIT_MS / 1000 }, 'acme: order waits for redis (never ordered without the cluster lock)')
      return { do: 'wait', ms: REDIS_WAIT_MS, backoff: null }
    }
  }

  /**
   * Puts a certificate this relay issued into Redis, then tells the members; while Redis is away
   * it is offered again every SHARE_RETRY_MS (said once) while `current()` holds.
   */
  async share(name: string, stored: StoredCertificate, times: CertificateTimes, current: () => boolean, attempt = 1): Promise<void> {
    try {
      await this.state.saveCertificate(name, stored.cert, stored.key, times.notAfter)
      this.host.announce?.(name, times.serial)
      await this.state.clearBackoff(name).catch(() => { /* expires by itself */ })
      if (attempt > 1) this.host.log.info({ host: name, serial: times.serial, attempts: attempt }, 'acme: certificate stored in redis')
    } catch (err) {
      if (attempt === 1) this.host.log.error({ code: 'PL_ERR_CLUSTER_REDIS', host: name, err: { message: (err as Error).message } }, 'acme: certificate not stored in redis yet; served here, offered again every second')
      const retry = setTimeout(() => {
        if (!this.host.closed() && current()) void this.share(name, stored, times, current, attempt + 1)
      }, SHARE_RETRY_MS)
      retry.unref()
    }
  }

  /** The members wait out a failed order's backoff instead of trying the name in turn. */
  async saveBackoff(name: string, backoff: Backoff): Promise<void> {
    await this.state.saveBackoff(name, backoff).catch(() => { /* each member still has its own */ })
  }

  /** One account for the cluster: the key in Redis, else `local` (or a new one) offered to it. */
  async accountKey(local: Buffer | null, create: () => Promise<Buffer>): Promise<Buffer> {
    const inRedis = await this.state.readAccountKey()
    if (inRedis) return inRedis
    const offered = local ?? await create()
    const key = await this.state.offerAccountKey(offered)
    if (offered.equals(key)) this.host.log.info('acme: account key stored in redis for the cluster')
    return key
  }

  /** True when Redis holds a fresh certificate for `name` (now served here); false when an order is needed. */
  private async adoptIfFresh(name: string): Promise<boolean> {
    const stored = await this.state.readCertificate(name)
    if (!stored) return false
    try {
      const times = certificateTimes(stored.cert)
      if (!this.host.isFresh(times)) return false
      if (this.host.held(name)?.serial !== times.serial) this.host.adopt(name, stored)
      return true
    } catch (err) {
      this.host.log.warn({ host: name, err: { message: (err as Error).message } }, 'acme: the cluster\'s certificate is unusable; ordering a new one')
      return false
    }
  }
}

/** Validity and serial of a PEM certificate (the first in a chain). */
export function certificateTimes(pem: Buffer): CertificateTimes {
  const x509 = new X509Certificate(pem)
  return { notBefore: Date.parse(x509.validFrom), notAfter: Date.parse(x509.validTo), serial: x509.serialNumber.toLowerCase() }
}
