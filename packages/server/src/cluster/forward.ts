import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from '@porchlight/shared/log'
import { sendPage } from '../visitors/pages.js'
import { signPeerRequest } from './peer-auth.js'
import type { Member } from './membership.js'
import { PEER_HEADERS } from './peer-auth.js'
import { requestPeer, type PeerTls } from './peer-tls.js'

/**
 * Hop-by-hop headers (RFC 9110 section 7.6.1) are the connection's, not the message's; they are
 * also the connection-specific headers HTTP/2 forbids (RFC 9113 section 8.2.2).
 */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade'])
export const PEER_NAMES = new Set<string>(Object.values(PEER_HEADERS))

export interface ForwardDeps {
  self: string
  peerKey: Buffer
  log: Logger
  /** How long the peer has to send the response head (the origin's timeout plus a margin). */
  responseTimeoutMs: number
  /** cluster.peer_tls: forward over https with this relay's certificate, verifying the peer's. */
  tls: PeerTls | null
}

/** A body follows the head: HTTP/1.x says so in its headers, HTTP/2 by not ending the stream with them. */
export function hasRequestBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  const h2 = (req as { stream?: { endAfterHeaders?: boolean } }).stream
  if (req.httpVersionMajor === 2 && h2 !== undefined) return h2.endAfterHeaders !== true && length !== '0'
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/**
 * The visitor's headers for the HTTP/1.1 hop to the peer: hop-by-hop and peer headers dropped.
 * An HTTP/2 request's cookie crumbs become one Cookie header (RFC 9113 section 8.2.3); its Host
 * is the `:authority` (h2.ts adaptRequest put it there).
 */
export function headersForPeer(req: IncomingMessage): string[] {
  const headers: string[] = []
  const cookies: string[] = []
  const h2 = req.httpVersionMajor === 2
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!
    const lower = name.toLowerCase()
    if (HOP_BY_HOP.has(lower) || PEER_NAMES.has(lower)) continue
    if (h2 && lower === 'cookie') cookies.push(req.rawHeaders[i + 1]!)
    else headers.push(name, req.rawHeaders[i + 1]!)
  }
  if (cookies.length > 0) headers.push('cookie', cookies.join('; '))
  return headers
}

/**
 * Sends one visitor request (HTTP/1.x, or HTTP/2 through the compat objects) to the peer that
 * holds a link for its host, once: the peer serves it only over its own link (its peer listener
 * never forwards again). Resolves false when the peer could not be reached before anything was
 * sent to the visitor, so the caller answers itself; true once answered or the visitor left.
 */
export function forwardToPeer(req: IncomingMessage, res: ServerResponse, peer: Member, claims: { visitor: string; proto: 'http' | 'https' }, deps: ForwardDeps): Promise<boolean> {
  const target = new URL(peer.peer)
  const host = req.headers.host ?? ''
  const h2 = req.httpVersionMajor === 2
  const headers = headersForPeer(req)
  // A body without a declared length (HTTP/1.1 chunked, or HTTP/2 DATA frames) goes chunked.
  if (hasRequestBody(req) && req.headers['content-length'] === undefined) headers.push('Transfer-Encoding', 'chunked')
  for (const [k, v] of signPeerRequest(deps.peerKey, { from: deps.self, ...claims }, { method: req.method ?? 'GET', host, url: req.url ?? '/' })) headers.push(k, v)

  return new Promise((resolve) => {
    let answered = false
    let out: ClientRequest
    try {
      out = requestPeer(target, { method: req.method, path: req.url, headers, agent: false, setHost: false }, deps.tls)
    } catch (err) {
      deps.log.warn({ code: 'PL_ERR_CLUSTER_PEER', peer: peer.id, host, err: { message: (err as Error).message } }, 'forward to peer refused')
      resolve(false)
      return
    }
    // The visitor left (an h2 RST_STREAM, a closed connection): the peer request goes too.
    const onVisitorGone = (): void => {
      out.destroy()
      if (!answered) {
        answered = true
        resolve(true)
      }
    }
    res.once('close', onVisitorGone)
    out.setTimeout(deps.responseTimeoutMs, () => out.destroy(new Error('no response head in time')))
    out.on('continue', () => res.writeContinue())
    out.on('response', (reply) => {
      if (answered) {
        reply.destroy()
        return
      }
      answered = true
      out.setTimeout(0)
      res.off('close', onVisitorGone)
      const raw: string[] = []
      for (let i = 0; i + 1 < reply.rawHeaders.length; i += 2) {
        if (!HOP_BY_HOP.has(reply.rawHeaders[i]!.toLowerCase())) raw.push(reply.rawHeaders[i]!, reply.rawHeaders[i + 1]!)
      }
      try {
        // HTTP/2 has no reason phrase (and Node warns when given one).
        if (h2) res.writeHead(reply.statusCode ?? 502, raw)
        else res.writeHead(reply.statusCode ?? 502, reply.statusMessage, raw)
      } catch {
        // A head HTTP/2 cannot carry (a repeated single-value field): a clean 502, never a crash.
        reply.destroy()
        sendPage(res, 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE', req.headers.accept)
        resolve(true)
        return
      }
      reply.pipe(res)
      reply.on('error', () => res.destroy())
      res.on('close', () => { if (!reply.complete) reply.destroy() })
      resolve(true)
    })
    out.on('error', (err) => {
      if (answered) {
        res.destroy()
        return
      }
      answered = true
      res.off('close', onVisitorGone)
      deps.log.warn({ code: 'PL_ERR_CLUSTER_PEER', peer: peer.id, host, err: { message: err.message } }, 'forward to peer failed')
      resolve(false)
    })
    req.pipe(out)
    req.on('error', () => out.destroy())
  })
}
