import { RateLimiter, type RateDecision } from './rate-limit.js'

/**
 * What counts failed attempts (Basic guesses, bad agent tokens, wrong admin logins): the bounded
 * in-memory RateLimiter on a single relay, or the cluster's Redis-backed one (cluster/shared-limits.ts)
 * so the configured total holds across relays. Answers may be async (a Redis round trip, bounded).
 */
export interface FailureLimiter {
  /** Counts one failure of `key` and says whether it is within the limit. */
  hit(key: string): RateDecision | Promise<RateDecision>
  /** May one more attempt of `key` happen? Counts nothing. */
  peek(key: string): RateDecision | Promise<RateDecision>
  /** Takes back one hit (an attempt counted by hit() that was never checked). */
  refund(key: string): void
  /** Forgets `key` (a success). */
  reset(key: string): void
}

export interface FailureLimitSpec {
  limit: number
  windowMs: number
  maxKeys: number
}

/** Makes the limiter named `name` ("basic", "agent_token", "admin_login"): local or cluster-wide. */
export type FailureLimiterFactory = (name: string, spec: FailureLimitSpec) => FailureLimiter

/** A single relay: the bounded in-memory table, counting on this relay only. */
export const localFailureLimiter: FailureLimiterFactory = (_name, spec) => new RateLimiter(spec)
