import { execFile } from 'node:child_process'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { SecureContext } from 'node:tls'

/** The path prefix HTTP-01 validation requests use (RFC 8555 section 8.3). */
export const HTTP01_PREFIX = '/.well-known/acme-challenge/'
/** The ALPN protocol TLS-ALPN-01 validation handshakes offer (RFC 8737). */
export const ACME_TLS_ALPN = 'acme-tls/1'
/** How long a dns_hook run may take (it should return once the record is visible). */
export const DNS_HOOK_TIMEOUT_MS = 120_000

/**
 * The answers to challenges in flight: HTTP-01 tokens (served before routing on the public HTTP
 * listener) and TLS-ALPN-01 certificates (served on the HTTPS listener to handshakes that offer
 * only `acme-tls/1`). Entries exist only while the relay's own order for that name is open.
 */
export class ChallengeAnswers {
  private readonly http = new Map<string, { host: string; keyAuthorization: string }>()
  private readonly alpn = new Map<string, SecureContext>()

  addHttp(host: string, token: string, keyAuthorization: string): void {
    this.http.set(token, { host, keyAuthorization })
  }

  removeHttp(token: string): void {
    this.http.delete(token)
  }

  addAlpn(host: string, context: SecureContext): void {
    this.alpn.set(host, context)
  }

  removeAlpn(host: string): void {
    this.alpn.delete(host)
  }

  hasAlpn(host: string): boolean {
    return this.alpn.has(host)
  }

  alpnContext(host: string): SecureContext | undefined {
    return this.alpn.get(host)
  }

  /**
   * Answers `GET /.well-known/acme-challenge/TOKEN` for a token of an open order whose name is the
   * request's Host; returns false (not answered) for anything else, which is then routed as usual.
   */
  answerHttp(req: IncomingMessage, res: ServerResponse): boolean {
    const token = challengeToken(req)
    const entry = token === null ? undefined : this.http.get(token)
    if (!entry || entry.host !== requestHost(req)) return false
    writeKeyAuthorization(req, res, entry.keyAuthorization)
    return true
  }
}

/** RFC 8555 tokens are base64url; anything else (or another path or method) is not a challenge request. */
const TOKEN_RE = /^[A-Za-z0-9_-]{1,256}$/

/** The token of an HTTP-01 validation request (GET or HEAD under HTTP01_PREFIX), else null. */
export function challengeToken(req: IncomingMessage): string | null {
  const url = req.url ?? ''
  if (!url.startsWith(HTTP01_PREFIX) || (req.method !== 'GET' && req.method !== 'HEAD')) return null
  const token = url.slice(HTTP01_PREFIX.length)
  return TOKEN_RE.test(token) ? token : null
}

/** The request's Host without port or trailing dot, lower-cased. */
export function requestHost(req: IncomingMessage): string {
  return (req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '')
}

export function writeKeyAuthorization(req: IncomingMessage, res: ServerResponse, keyAuthorization: string): void {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(keyAuthorization), 'cache-control': 'no-store' })
  res.end(req.method === 'HEAD' ? undefined : keyAuthorization)
}

/**
 * Runs the operator's dns-01 hook as `HOOK present|cleanup FQDN VALUE` (certbot's manual hooks
 * take the same three things). No shell; a non-zero exit or a timeout rejects with its stderr.
 */
export function runDnsHook(hook: string, action: 'present' | 'cleanup', fqdn: string, value: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(hook, [action, fqdn, value], { timeout: DNS_HOOK_TIMEOUT_MS, maxBuffer: 64 * 1024 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`acme.dns_hook ${action} ${fqdn} failed: ${(err as Error).message.split('\n')[0]}${stderr ? `: ${String(stderr).trim().slice(0, 500)}` : ''}`, { cause: err }))
      else resolve()
    })
  })
}
