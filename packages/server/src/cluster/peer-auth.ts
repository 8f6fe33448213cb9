import type { IncomingHttpHeaders } from 'node:http'
import { hmac, hmacMatches } from './keys.js'

/**
 * Requests between relays carry who sent them, when, and an HMAC (the cluster's peer key) over
 * those and the request line, Host, the visitor's address and scheme. The peer listener belongs
 * on the relays' private network: the signature stops anyone else from injecting requests with a
 * chosen visitor address, and the 30 s window bounds replays.
 */
export const PEER_HEADERS = {
  from: 'x-porchlight-peer',
  time: 'x-porchlight-peer-time',
  visitor: 'x-porchlight-peer-visitor',
  proto: 'x-porchlight-peer-proto',
  sig: 'x-porchlight-peer-sig',
} as const

export const PEER_CLOCK_WINDOW_MS = 30_000

export interface PeerClaims {
  from: string
  visitor: string
  proto: 'http' | 'https'
}

function signed(c: PeerClaims & { time: string; method: string; host: string; url: string }): string {
  return [c.from, c.time, c.method, c.host, c.url, c.visitor, c.proto].join('\n')
}

/** Header pairs that authenticate one request to a peer. */
export function signPeerRequest(key: Buffer, claims: PeerClaims, req: { method: string; host: string; url: string }, now = Date.now()): Array<[string, string]> {
  const time = String(now)
  return [
    [PEER_HEADERS.from, claims.from],
    [PEER_HEADERS.time, time],
    [PEER_HEADERS.visitor, claims.visitor],
    [PEER_HEADERS.proto, claims.proto],
    [PEER_HEADERS.sig, hmac(key, signed({ ...claims, time, ...req }))],
  ]
}

/** The verified claims of a peer request, or a one-line reason it is refused. */
export function verifyPeerRequest(key: Buffer, headers: IncomingHttpHeaders, req: { method: string; url: string }, known: (id: string) => boolean, now = Date.now()): PeerClaims | { refused: string } {
  const one = (name: string): string | null => {
    const v = headers[name]
    return typeof v === 'string' ? v : null
  }
  const from = one(PEER_HEADERS.from)
  const time = one(PEER_HEADERS.time)
  const visitor = one(PEER_HEADERS.visitor)
  const proto = one(PEER_HEADERS.proto)
  const sig = one(PEER_HEADERS.sig)
  const host = one('host') ?? ''
  if (from === null || time === null || visitor === null || sig === null || (proto !== 'http' && proto !== 'https')) return { refused: 'missing peer headers' }
  if (!/^\d{1,16}$/.test(time) || Math.abs(now - Number(time)) > PEER_CLOCK_WINDOW_MS) return { refused: 'peer clock off by more than 30 s (or a replay)' }
  if (!hmacMatches(key, signed({ from, time, visitor, proto, method: req.method, host, url: req.url }), sig)) return { refused: 'bad peer signature (another cluster secret?)' }
  if (!known(from)) return { refused: `unknown member ${from}` }
  return { from, visitor, proto }
}
