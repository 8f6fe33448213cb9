import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from '@porchlight/shared/log'
import { signPeerRequest } from './peer-auth.js'
import type { Member } from './membership.js'
import { PEER_HEADERS } from './peer-auth.js'
import { requestPeer, type PeerTls } from './peer-tls.js'

/** Hop-by-hop headers (RFC 9110 section 7.6.1) are the connection's, not the message's. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade'])
const PEER_NAMES = new Set<string>(Object.values(PEER_HEADERS))

export interface ForwardDeps {
  self: string
  peerKey: Buffer
  log: Logger
  /** How long the peer has to send the response head (the origin's timeout plus a margin). */
  responseTimeoutMs: number
  /** cluster.peer_tls: forward over https with this relay's certificate, verifying the peer's. */
  tls: PeerTls | null
}

/**
 * Sends one visitor request to the peer that holds a link for its host, once: the peer serves it
 * only over its own link (its peer listener never forwards again). Resolves false when the peer
 * could not be reached before anything was sent to the visitor, so the caller answers itself.
 */
export function forwardToPeer(req: IncomingMessage, res: ServerResponse, peer: Member, claims: { visitor: string; proto: 'http' | 'https' }, deps: ForwardDeps): Promise<boolean> {
  const target = new URL(peer.peer)
  const host = req.headers.host ?? ''
  const headers: string[] = []
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!
    const lower = name.toLowerCase()
    if (HOP_BY_HOP.has(lower) || PEER_NAMES.has(lower)) continue
    headers.push(name, req.rawHeaders[i + 1]!)
  }
  if (req.headers['transfer-encoding'] !== undefined) headers.push('Transfer-Encoding', 'chunked')
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
    out.setTimeout(deps.responseTimeoutMs, () => out.destroy(new Error('no response head in time')))
    out.on('continue', () => res.writeContinue())
    out.on('response', (reply) => {
      answered = true
      out.setTimeout(0)
      const raw: string[] = []
      for (let i = 0; i + 1 < reply.rawHeaders.length; i += 2) {
        if (!HOP_BY_HOP.has(reply.rawHeaders[i]!.toLowerCase())) raw.push(reply.rawHeaders[i]!, reply.rawHeaders[i + 1]!)
      }
      res.writeHead(reply.statusCode ?? 502, reply.statusMessage, raw)
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
      deps.log.warn({ code: 'PL_ERR_CLUSTER_PEER', peer: peer.id, host, err: { message: err.message } }, 'forward to peer failed')
      resolve(false)
    })
    req.pipe(out)
    req.on('error', () => out.destroy())
  })
}
