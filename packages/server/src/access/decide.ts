import type { ErrorCode } from '@porchlight/shared/errors'
import { BASIC_CHALLENGE, checkBasicCredentials, isPasswordHash, parseBasicAuth, type PasswordCache } from './basic.js'
import { ipAllowed, parseCidrList, type Cidr } from './ips.js'
import { buildAccessCookie, readAccessCookies, stripShareParam, type LinkFailure, type LinkStore } from './links.js'
import type { FailureLimiter } from './failure-limit.js'

/**
 * The one visitor authorisation function: every entry path (requests, upgrades, HEAD, OPTIONS)
 * calls it with the same inputs. Order: allow_ips restricts first and nothing bypasses it; then
 * any one configured method admits (client certificate, share link or its cookie, Basic).
 */
export interface AccessRules {
  links?: boolean | null
  basic?: { user: string; password_hash: string } | null
  allow_ips?: readonly string[] | null
  /** true: any visitor certificate from the relay CA; a list: visitor certificates with these names. */
  client_certs?: boolean | readonly string[] | null
}

export interface AccessInput {
  access: AccessRules | null | undefined
  /** From clientAddress(): the TCP peer, or the XFF client behind a trusted proxy. */
  clientIp: string
  https: boolean
  authorizationHeader: string | readonly string[] | undefined
  cookieHeader: string | undefined
  /** Request target as received (origin-form). */
  url: string
  /** Normalised routing host. */
  host: string
  /**
   * The visitor presented a VISITOR certificate (profile OU=visitor) that OpenSSL verified against
   * the relay CA and that is not revoked. Agent certificates never count.
   */
  peerCertOk: boolean
  /** That certificate's name (CN), for `client_certs: [names]`. */
  peerCertName?: string | null
}

export interface AccessDeps {
  links: Pick<LinkStore, 'verify'>
  basicLimiter: FailureLimiter
  now: () => number
  passwordCache?: PasswordCache
}

export type AccessDecision =
  | { action: 'allow'; stripCookie: boolean }
  | { action: 'redirect'; location: string; setCookie: string }
  | {
    action: 'deny'
    status: 401 | 403 | 429
    code: ErrorCode
    wwwAuthenticate?: string
    retryAfterS?: number
    /** For the access log only (never shown to the visitor). */
    reason: string
  }

const parsedAllowIps = new WeakMap<readonly string[], Cidr[]>()

export async function decideAccess(input: AccessInput, deps: AccessDeps): Promise<AccessDecision> {
  const rules = input.access
  const allowIps = rules?.allow_ips ?? []
  const linksOn = rules?.links === true
  const basic = rules?.basic ?? null
  const certRule = rules?.client_certs ?? false
  const certsOn = certRule === true || (Array.isArray(certRule) && certRule.length > 0)
  // Without links the relay's cookie means nothing, but it is still ours: never forward it.
  const stripCookie = true

  if (allowIps.length > 0 && !ipAllowed(input.clientIp, allowCidrs(allowIps))) {
    return deny(403, 'PL_ERR_ACCESS_DENIED', 'ip_not_allowed')
  }
  if (!linksOn && basic === null && !certsOn) return { action: 'allow', stripCookie }
  if (certsOn && input.peerCertOk && (certRule === true || (Array.isArray(certRule) && typeof input.peerCertName === 'string' && certRule.includes(input.peerCertName)))) {
    return { action: 'allow', stripCookie }
  }

  const challenge = basic === null ? {} : { wwwAuthenticate: BASIC_CHALLENGE }
  let linkFailure: LinkFailure | null = null
  if (linksOn) {
    const now = deps.now()
    const share = stripShareParam(input.url)
    if (share.token !== null) {
      const check = deps.links.verify(share.token, input.host, now)
      if (check.ok) return { action: 'redirect', location: share.url, setCookie: buildAccessCookie(share.token, check.exp, input.https, now) }
      return { ...deny(401, 'PL_ERR_ACCESS_LINK_INVALID', `link_${check.reason}`), ...challenge }
    }
    for (const cookie of readAccessCookies(input.cookieHeader, input.https)) {
      const check = deps.links.verify(cookie, input.host, now)
      if (check.ok) return { action: 'allow', stripCookie }
      linkFailure ??= check.reason
    }
  }

  if (basic !== null && input.authorizationHeader !== undefined) {
    const key = `${input.clientIp}|${input.host}`
    const creds = parseBasicAuth(input.authorizationHeader)
    // The attempt is counted BEFORE the slow check: concurrent guesses each take a slot, so no
    // more than the limit are ever checked at once (issue 16). Successes reset the count.
    const gate = await (creds === null ? deps.basicLimiter.peek(key) : deps.basicLimiter.hit(key))
    if (!gate.allowed) return { ...deny(429, 'PL_ERR_ACCESS_RATE_LIMITED', 'basic_rate_limited'), retryAfterS: gate.retryAfterS }
    if (creds !== null) {
      let ok: boolean
      try {
        ok = await checkBasicCredentials(creds, basic, deps.passwordCache)
      } catch (err) {
        // Too many password checks already queued relay-wide: shed load, do not count a failure.
        if ((err as { code?: string }).code === 'PL_ERR_ACCESS_RATE_LIMITED') {
          deps.basicLimiter.refund(key)
          return { ...deny(429, 'PL_ERR_ACCESS_RATE_LIMITED', 'basic_busy'), retryAfterS: 1 }
        }
        throw err
      }
      if (ok) {
        deps.basicLimiter.reset(key)
        return { action: 'allow', stripCookie }
      }
      return { ...deny(401, 'PL_ERR_ACCESS_UNAUTHORIZED', 'basic_wrong_credentials'), ...challenge }
    }
    if (linkFailure === null) return { ...deny(401, 'PL_ERR_ACCESS_UNAUTHORIZED', 'basic_malformed'), ...challenge }
  }

  if (linkFailure !== null) return { ...deny(401, 'PL_ERR_ACCESS_LINK_INVALID', `cookie_${linkFailure}`), ...challenge }
  // Only a client certificate could admit: a browser cannot be prompted for one, so 403.
  if (!linksOn && basic === null) return deny(403, 'PL_ERR_ACCESS_DENIED', 'client_cert_required')
  return { ...deny(401, 'PL_ERR_ACCESS_UNAUTHORIZED', 'no_credentials'), ...challenge }
}

/**
 * Problems with an `access:` block an agent asked the relay to enforce (checked at publish time,
 * before any visitor arrives); empty when it is usable.
 */
export function accessRulesProblems(rules: AccessRules): string[] {
  const problems: string[] = []
  const { invalid } = parseCidrList(rules.allow_ips ?? [])
  for (const entry of invalid) problems.push(`allow_ips: ${JSON.stringify(entry.slice(0, 64))} is not an IP address or CIDR`)
  if (rules.basic) {
    if (rules.basic.user === '' || rules.basic.user.includes(':')) problems.push('basic.user must be non-empty and contain no ":"')
    if (!isPasswordHash(rules.basic.password_hash)) problems.push('basic.password_hash is not a supported scrypt hash (use `porchlight hash-password`)')
  }
  return problems
}

function allowCidrs(list: readonly string[]): Cidr[] {
  let cidrs = parsedAllowIps.get(list)
  if (!cidrs) {
    // Invalid entries match nobody; the list still restricts (fail closed).
    cidrs = parseCidrList(list).cidrs
    parsedAllowIps.set(list, cidrs)
  }
  return cidrs
}

function deny(status: 401 | 403 | 429, code: ErrorCode, reason: string): Extract<AccessDecision, { action: 'deny' }> {
  return { action: 'deny', status, code, reason }
}
