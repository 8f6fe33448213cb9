import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import https from 'node:https'
import type { Socket } from 'node:net'
import { isIP } from 'node:net'
import type { Logger } from '@porchlight/shared/log'
import { verifyPeerRequest, PEER_HEADERS, type PeerClaims } from './peer-auth.js'
import { peerAuthenticated, peerServerTlsOptions, type PeerTls } from './peer-tls.js'

type UpgradeHandler = (req: IncomingMessage, socket: Socket, head: Buffer) => void

/** What the peer listener needs of the cluster node and the relay. */
export interface PeerServerDeps {
  self: string
  peerKey: Buffer
  log: Logger
  /** /readyz: 200 or 503 with the reason. */
  readiness: () => { ready: boolean; reason: string }
  /** Answer to a peer asking whether this relay reaches Redis (its view is fresh). */
  fresh: () => boolean
  /** The relay's visitor handlers serving over local links only (never forwarding again). */
  visitors: { http: (req: IncomingMessage, res: ServerResponse) => void; https: (req: IncomingMessage, res: ServerResponse) => void }
  /** The relay's visitor upgrade handlers, likewise over local links only. */
  upgrades: { http: UpgradeHandler; https: UpgradeHandler }
  /** cluster.peer_tls: https, and everything but /readyz needs a client certificate from its CA. */
  tls: PeerTls | null
}

export const FRESH_PATH = '/_porchlight/peer/fresh'

/**
 * `listen.peer`: readiness for load balancers (GET /readyz, no data, no auth) and, for the other
 * relays (with peer_tls: over mTLS, certificates from its CA), signed requests: a freshness probe
 * and forwarded visitor requests and WebSocket upgrades, handed to this relay's visitor handler as
 * if the visitor's connection had come here.
 */
export function createPeerServer(deps: PeerServerDeps): http.Server {
  const options: http.ServerOptions = { headersTimeout: 10_000, requestTimeout: 0, connectionsCheckingInterval: 1000, maxHeaderSize: 16 * 1024, joinDuplicateHeaders: false }
  const server = deps.tls ? https.createServer({ ...options, ...peerServerTlsOptions(deps.tls) }) : http.createServer(options)
  server.maxHeadersCount = 0
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const readyz = req.url === '/readyz' && (req.method === 'GET' || req.method === 'HEAD') && req.headers[PEER_HEADERS.from] === undefined
    if (readyz) {
      const r = deps.readiness()
      res.writeHead(r.ready ? 200 : 503, { 'content-type': 'text/plain', 'cache-control': 'no-store' })
      res.end(r.ready ? 'ready\n' : `not ready: ${r.reason}\n`)
      return
    }
    const admitted = admit(req, deps)
    if ('status' in admitted) {
      res.writeHead(admitted.status, { 'content-type': 'text/plain', ...(admitted.close ? { connection: 'close' } : {}) })
      res.end(admitted.text)
      if (admitted.close) req.resume()
      return
    }
    if (req.url === FRESH_PATH) {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      res.end(JSON.stringify({ fresh: deps.fresh() }))
      return
    }
    adopt(req, admitted.visitor)
    deps.visitors[admitted.proto](req, res)
  }
  // A forwarded WebSocket upgrade: the same checks (mTLS, signature, visitor address), then the
  // relay's own upgrade handler over local links only. Nothing else is upgraded here.
  const onUpgrade = (req: IncomingMessage, socket: Socket, head: Buffer): void => {
    socket.on('error', () => undefined)
    const admitted = req.url === FRESH_PATH ? { status: 404, text: 'not found\n', close: true } : admit(req, deps)
    if ('status' in admitted) {
      socket.end(`HTTP/1.1 ${admitted.status} ${STATUS_TEXT[admitted.status] ?? 'Error'}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(admitted.text)}\r\nconnection: close\r\n\r\n${admitted.text}`)
      return
    }
    adopt(req, admitted.visitor)
    deps.upgrades[admitted.proto](req, socket, head)
  }
  server.on('request', onRequest)
  server.on('checkContinue', onRequest)
  server.on('upgrade', onUpgrade)
  server.on('clientError', (_err: Error, socket: Socket) => socket.destroy())
  return server
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found' }

/**
 * Who may send this request: with peer_tls a client certificate from its CA, then always the
 * HMAC of a known member and a visitor address. The claims, or the answer to refuse it with.
 */
function admit(req: IncomingMessage, deps: PeerServerDeps): PeerClaims | { status: number; text: string; close: boolean } {
  if (deps.tls && !peerAuthenticated(req.socket)) {
    // A balancer's check may come without a certificate; nothing else may (mTLS, then the HMAC).
    const failed = (req.socket as { authorizationError?: Error | string }).authorizationError
    const reason = failed === undefined ? 'no client certificate' : String(typeof failed === 'string' ? failed : failed.message)
    deps.log.warn({ code: 'PL_ERR_CLUSTER_PEER', remote: req.socket.remoteAddress, reason }, 'peer request refused: no valid client certificate')
    return { status: 401, text: 'PL_ERR_CLUSTER_PEER: a client certificate from cluster.peer_tls.ca is required\n', close: true }
  }
  if (req.headers[PEER_HEADERS.from] === undefined) return { status: 404, text: 'not found\n', close: false }
  const claims = verifyPeerRequest(deps.peerKey, req.headers, { method: req.method ?? 'GET', url: req.url ?? '/' }, (id) => id !== deps.self)
  if ('refused' in claims) {
    deps.log.warn({ code: 'PL_ERR_CLUSTER_PEER', remote: req.socket.remoteAddress, reason: claims.refused }, 'peer request refused')
    return { status: 401, text: `PL_ERR_CLUSTER_PEER: ${claims.refused}\n`, close: true }
  }
  if (req.url !== FRESH_PATH && isIP(claims.visitor) === 0) return { status: 400, text: 'PL_ERR_CLUSTER_PEER: bad visitor address\n', close: false }
  return claims
}

/**
 * The visitor handler reads the TCP peer from the socket: make it the visitor's (one request or
 * upgrade per connection: forwards never reuse one), and strip what only the hop needed.
 */
function adopt(req: IncomingMessage, visitor: string): void {
  Object.defineProperty(req.socket, 'remoteAddress', { value: visitor, configurable: true })
  stripPeerHeaders(req)
}

function stripPeerHeaders(req: IncomingMessage): void {
  const names = new Set<string>(Object.values(PEER_HEADERS))
  for (const name of names) delete req.headers[name]
  const raw: string[] = []
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) if (!names.has(req.rawHeaders[i]!.toLowerCase())) raw.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!)
  req.rawHeaders.splice(0, req.rawHeaders.length, ...raw)
}
