import type { ClientRequest, IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { pipeBoth } from '@porchlight/shared/net'
import { HOP_BY_HOP, headersForPeer, type ForwardDeps } from './forward.js'
import type { Member } from './membership.js'
import { signPeerRequest } from './peer-auth.js'
import { requestPeer } from './peer-tls.js'

/** Of a refusal relayed to the visitor, the headers that described the peer connection's framing. */
const REFUSAL_DROPPED = new Set([...HOP_BY_HOP].filter((h) => h !== 'trailer'))

/**
 * A visitor's WebSocket upgrade for a host this relay has no healthy link for, sent once to the
 * peer that has one, signed like a forwarded request (the peer checks it, then the site's access
 * rules with the visitor's address, and serves it over its own link only). The peer's 101 joins
 * the two sockets both ways; any other answer is relayed as-is and the connection closed.
 * Resolves false when the peer could not be reached before anything reached the visitor (the
 * caller answers itself, as without a cluster); the visitor's socket has not been read then.
 */
export function forwardUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, peer: Member, claims: { visitor: string; proto: 'http' | 'https' }, deps: ForwardDeps): Promise<boolean> {
  const target = new URL(peer.peer)
  const host = req.headers.host ?? ''
  // As for requests, but the upgrade's own headers go on (Sec-WebSocket-* are end-to-end already).
  const headers = [...headersForPeer(req), 'Connection', 'Upgrade', 'Upgrade', req.headers.upgrade ?? 'websocket']
  for (const [k, v] of signPeerRequest(deps.peerKey, { from: deps.self, ...claims }, { method: req.method ?? 'GET', host, url: req.url ?? '/' })) headers.push(k, v)

  return new Promise((resolve) => {
    let settled = false
    const settle = (sent: boolean): void => {
      if (settled) return
      settled = true
      socket.off('close', onVisitorGone)
      resolve(sent)
    }
    let out: ClientRequest
    try {
      out = requestPeer(target, { method: req.method, path: req.url, headers, agent: false, setHost: false }, deps.tls)
    } catch (err) {
      deps.log.warn({ code: 'PL_ERR_CLUSTER_PEER', peer: peer.id, host, err: { message: (err as Error).message } }, 'upgrade to peer refused')
      resolve(false)
      return
    }
    const onVisitorGone = (): void => {
      out.destroy()
      settle(true)
    }
    socket.once('close', onVisitorGone)
    out.setTimeout(deps.responseTimeoutMs, () => out.destroy(new Error('no response head in time')))
    out.on('upgrade', (reply: IncomingMessage, upstream: Socket, upstreamHead: Buffer) => {
      upstream.setTimeout(0)
      if (settled) {
        upstream.destroy()
        return
      }
      settle(true)
      socket.write(`HTTP/1.1 101 ${reply.statusMessage || 'Switching Protocols'}\r\n${headerLines(reply.rawHeaders, new Set())}\r\n`)
      if (upstreamHead.length > 0) socket.write(upstreamHead)
      if (head.length > 0) upstream.write(head)
      upstream.setNoDelay(true)
      // Both ways with backpressure; an error or an early close on either side destroys both, and
      // so does the end of both directions (nothing is left open behind a finished WebSocket).
      pipeBoth(socket, upstream, () => {
        socket.destroy()
        upstream.destroy()
      })
    })
    out.on('response', (reply: IncomingMessage) => {
      if (settled) {
        reply.destroy()
        return
      }
      settle(true)
      // The peer (or the site's access rules there) refused to switch: its answer, then close.
      socket.write(`HTTP/1.1 ${reply.statusCode ?? 502} ${reply.statusMessage ?? ''}\r\n${headerLines(reply.rawHeaders, REFUSAL_DROPPED)}connection: close\r\n\r\n`)
      reply.pipe(socket)
      reply.on('error', () => socket.destroy())
      socket.on('close', () => reply.destroy())
    })
    out.on('error', (err) => {
      if (settled) {
        socket.destroy()
        return
      }
      deps.log.warn({ code: 'PL_ERR_CLUSTER_PEER', peer: peer.id, host, err: { message: err.message } }, 'upgrade to peer failed')
      settle(false)
    })
    out.end()
  })
}

/** `name: value\r\n` lines of a parsed head (Node's parser refused CR, LF and NUL in it). */
function headerLines(raw: string[], drop: ReadonlySet<string>): string {
  let lines = ''
  for (let i = 0; i + 1 < raw.length; i += 2) if (!drop.has(raw[i]!.toLowerCase())) lines += `${raw[i]!}: ${raw[i + 1]!}\r\n`
  return lines
}
