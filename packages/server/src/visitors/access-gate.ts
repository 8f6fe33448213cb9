import type { IncomingMessage } from 'node:http'
import type { TLSSocket } from 'node:tls'
import type { ErrorCode } from '@porchlight/shared/errors'
import { decideAccess } from '../access/decide.js'
import { checkPeerCert } from '../agents/tls.js'
import { stripRelayCookies } from '../access/links.js'
import type { HttpRoute } from '../agents/registry.js'
import type { RelayContext } from '../context.js'
import type { FailureLimiter } from '../access/failure-limit.js'

/** The outcome of checking a visitor against a site's `access:` rules. */
export type GateResult =
  | { action: 'allow'; cookie: string | null | undefined; dropAuthorization: boolean }
  | { action: 'redirect'; location: string; setCookie: string }
  | { action: 'deny'; status: number; code: ErrorCode; reason: string; headers: Record<string, string> }

/**
 * The verdict for a site without `access:` rules (null when it has some): everyone is admitted,
 * and the relay's cookie (e.g. left over from when the site had links) is still stripped.
 * Synchronous, so the request path of an open site does not wait for a promise.
 */
export function openSiteGate(route: HttpRoute, req: IncomingMessage): GateResult | null {
  const access = route.access
  if (access && (access.links || access.basic || access.allow_ips?.length || hasCertRule(access.client_certs))) return null
  return { action: 'allow', cookie: stripRelayCookies(req.headers.cookie) ?? null, dropAuthorization: false }
}

/**
 * Every entry path (requests, upgrades, HEAD/OPTIONS) calls this one function. A site without
 * `access:` admits everyone; otherwise the relay's cookie and a used Authorization never reach
 * the origin.
 */
export async function checkVisitorAccess(
  ctx: RelayContext,
  route: HttpRoute,
  req: IncomingMessage,
  clientIp: string,
  https: boolean,
  basicLimiter: FailureLimiter,
): Promise<GateResult> {
  const open = openSiteGate(route, req)
  if (open !== null) return open
  const cookieHeader = req.headers.cookie
  const access = route.access!
  const socket = req.socket as TLSSocket
  // OpenSSL verified the chain; the serial must also not be revoked (checked on every request, so
  // a revocation applies to live keep-alive connections too), and it must be a visitor certificate.
  const peer = https && socket.authorized === true ? checkPeerCert(socket, ctx.revokedSerials()) : null
  const visitorCert = peer?.ok === true && peer.kind === 'visitor' ? peer.name : null
  const decision = await decideAccess(
    {
      access: {
        links: access.links ?? false,
        basic: access.basic ?? null,
        allow_ips: access.allow_ips ?? [],
        client_certs: access.client_certs ?? false,
      },
      clientIp,
      https,
      authorizationHeader: req.headers.authorization,
      cookieHeader,
      url: req.url ?? '/',
      host: route.host,
      peerCertOk: visitorCert !== null,
      peerCertName: visitorCert,
    },
    { links: ctx.links, basicLimiter, now: Date.now },
  )
  if (decision.action === 'allow') {
    return { action: 'allow', cookie: stripRelayCookies(cookieHeader ?? '') ?? null, dropAuthorization: access.basic != null }
  }
  if (decision.action === 'redirect') return decision
  const headers: Record<string, string> = {}
  if (decision.wwwAuthenticate) headers['www-authenticate'] = decision.wwwAuthenticate
  if (decision.retryAfterS !== undefined) headers['retry-after'] = String(decision.retryAfterS)
  return { action: 'deny', status: decision.status, code: decision.code as ErrorCode, reason: decision.reason, headers }
}

function hasCertRule(rule: boolean | readonly string[] | undefined | null): boolean {
  return rule === true || (Array.isArray(rule) && rule.length > 0)
}
