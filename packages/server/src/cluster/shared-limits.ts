import type { Redis } from 'ioredis'
import { RateLimiterCompatibleAbstract, RateLimiterRedis, RateLimiterRes, RLWrapperTimeouts } from 'rate-limiter-flexible'
import type { FailureLimiter, FailureLimitSpec } from '../access/failure-limit.js'
import { RateLimiter, type RateDecision } from '../access/rate-limit.js'
import { hmac } from './keys.js'

/** A request never waits longer than this on Redis: past it the per-relay insurance answers. */
export const SHARED_LIMIT_TIMEOUT_MS = 500

/**
 * A failure limit counted in Redis, so the configured total holds across all relays
 * (rate-limiter-flexible's RateLimiterRedis: one atomic INCR + PEXPIRE per hit). Keys are
 * `porchlight:limit:<name>:<HMAC of the key>`: no address or user name is stored in Redis.
 * Redis down, slow or not yet connected: the relay's own bounded table counts instead (the
 * insurance limiter), so limits still hold per relay and no request waits on Redis.
 */
export function sharedFailureLimiter(redis: Redis, keyHmac: Buffer, name: string, spec: FailureLimitSpec): FailureLimiter {
  const insurance = new BoundedInsurance(spec, `porchlight:limit:${name}`)
  const store = new RateLimiterRedis({
    storeClient: redis,
    keyPrefix: `porchlight:limit:${name}`,
    points: spec.limit,
    duration: Math.max(1, Math.ceil(spec.windowMs / 1000)),
    // A disconnected client goes to the insurance at once instead of failing a command.
    rejectIfRedisNotReady: true,
    insuranceLimiter: insurance,
  })
  const limiter = new RLWrapperTimeouts({ limiter: store, timeoutMs: SHARED_LIMIT_TIMEOUT_MS, insuranceLimiter: insurance })
  const redisKey = (key: string): string => hmac(keyHmac, `${name}|${key}`)
  return {
    async hit(key) {
      try {
        await limiter.consume(redisKey(key), 1)
        return { allowed: true, retryAfterS: 0 }
      } catch (res) {
        return refusedOrAllowed(res)
      }
    },
    async peek(key) {
      try {
        const res = await limiter.get(redisKey(key))
        return res !== null && res.consumedPoints >= spec.limit ? refused(res) : { allowed: true, retryAfterS: 0 }
      } catch (res) {
        return refusedOrAllowed(res)
      }
    },
    refund(key) { limiter.reward(redisKey(key), 1).catch(() => undefined) },
    reset(key) { limiter.delete(redisKey(key)).catch(() => undefined) },
  }
}

function refused(res: RateLimiterRes): RateDecision {
  return { allowed: false, retryAfterS: Math.max(1, Math.ceil(res.msBeforeNext / 1000)) }
}

/** A RateLimiterRes rejection is "over the limit"; anything else (both stores failed) admits, as a limiter must never lock everyone out. */
function refusedOrAllowed(res: unknown): RateDecision {
  return res instanceof RateLimiterRes ? refused(res) : { allowed: true, retryAfterS: 0 }
}

/**
 * The insurance limiter: rate-limiter-flexible's interface over the relay's bounded LRU table
 * (RateLimiterMemory's table has no cap; SECURITY C5 needs one, so a flood of distinct keys while
 * Redis is down cannot grow memory). Keys arrive already hashed.
 */
class BoundedInsurance extends RateLimiterCompatibleAbstract {
  private readonly table: RateLimiter

  constructor(private readonly spec: FailureLimitSpec, prefix: string) {
    super()
    this.table = new RateLimiter(spec)
    // The base class's accessors only throw; own data properties take their place (the wrappers
    // assign blockDuration and execEvenly, which this table ignores).
    Object.defineProperties(this, {
      keyPrefix: { value: prefix },
      blockDuration: { value: 0, writable: true },
      execEvenly: { value: false, writable: true },
    })
  }

  override consume(key: string | number): Promise<RateLimiterRes> {
    const d = this.table.hit(String(key))
    return d.allowed ? Promise.resolve(new RateLimiterRes(0, 0, 0, false)) : Promise.reject(new RateLimiterRes(0, d.retryAfterS * 1000, this.spec.limit + 1, false))
  }

  override get(key: string | number): Promise<RateLimiterRes | null> {
    const d = this.table.peek(String(key))
    return Promise.resolve(d.allowed ? null : new RateLimiterRes(0, d.retryAfterS * 1000, this.spec.limit, false))
  }

  override reward(key: string | number): Promise<RateLimiterRes> {
    this.table.refund(String(key))
    return Promise.resolve(new RateLimiterRes())
  }

  override delete(key: string | number): Promise<boolean> {
    this.table.reset(String(key))
    return Promise.resolve(true)
  }

  override penalty(key: string | number): Promise<RateLimiterRes> { return this.consume(key) }
  override set(): Promise<RateLimiterRes> { return Promise.resolve(new RateLimiterRes()) }
  override block(): Promise<RateLimiterRes> { return Promise.resolve(new RateLimiterRes()) }
}
