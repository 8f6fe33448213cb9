import http from 'node:http'
import https from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { WebSocketServer, type WebSocket } from 'ws'
import { parseBearer, tokenMatchesHash } from '@porchlight/shared/secrets'
import type { RelayConfig } from '@porchlight/shared/config'
import type { Logger } from '@porchlight/shared/log'
import { localFailureLimiter, type FailureLimiterFactory } from '../access/failure-limit.js'
import { checkClientCert } from './tls.js'
import type { AuthFailureReason } from '../admin/metrics.js'

/** Largest WebSocket message the relay accepts from an agent (set explicitly; ws defaults to 100 MiB). */
export const AGENT_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
const HANDSHAKE_TIMEOUT_MS = 10_000
const GENERIC_401 = 'unauthorized\n'

export interface AuthenticatedAgent {
  agent: string
  /** The process's instance id from the `x-porchlight-instance` header ("default" without one). */
  instance: string
  /** Which of the process's links this is (`x-porchlight-link`, "default" without one). */
  link: string
  /** The `token_sha256` the token matched. */
  tokenSha256: string
  ws: WebSocket
  certSerial: string | null
  remoteAddress: string
}

export interface AgentEndpointDeps {
  config: () => RelayConfig
  log: Logger
  revokedSerials: () => Set<string>
  onAgent: (a: AuthenticatedAgent) => void
  /**
   * Upgrades arrive over TLS on a listener that asks for client certificates from the relay CA,
   * so checkClientCert can read OpenSSL's verdict; false for plain ws (require_cert is refused).
   */
  clientCerts: boolean
  /** True when this process already holds a live session here under another link id (409). */
  linkConflict?: (agent: string, instance: string, link: string) => boolean
  /** Told of every refused upgrade (the `porchlight_agent_auth_failures_total` count). */
  onAuthFailure?: (reason: AuthFailureReason) => void
  /** Where bad tokens are counted (cluster-wide in a cluster); default: this relay's own table. */
  failureLimiter?: FailureLimiterFactory
}

export interface AgentListenerDeps extends Omit<AgentEndpointDeps, 'clientCerts'> {
  /** TLS options for the agents listener (ca init server cert + CA); null for plain ws. */
  tlsOptions: https.ServerOptions | null
}

/**
 * The agents' endpoint, whichever listener carries it: its own (createAgentListener) or the
 * visitors' HTTPS listener with `listen.agents: shared`. Authentication happens on the HTTP
 * upgrade request, BEFORE the WebSocket exists: a bad token gets 401, a bad certificate 403 with a
 * one-line reason, and an address with too many failures 429. Only this file and the agent's
 * relay-link import `ws`.
 */
export interface AgentEndpoint {
  onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void
  /** A plain request (no upgrade): 426. */
  onRequest(req: IncomingMessage, res: ServerResponse): void
}

export function createAgentEndpoint(deps: AgentEndpointDeps): AgentEndpoint {
  const failures = (deps.failureLimiter ?? localFailureLimiter)('agent_token', { limit: 20, windowMs: 60_000, maxKeys: 10_000 })
  const wss = new WebSocketServer({ noServer: true, maxPayload: AGENT_MAX_PAYLOAD_BYTES, perMessageDeflate: false, clientTracking: false })
  const log = deps.log.child({ component: 'agents' })
  const failed = deps.onAuthFailure ?? (() => undefined)

  function onRequest(_req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(426, { 'content-type': 'text/plain', connection: 'close' })
    res.end('porchlight agents endpoint: WebSocket upgrade required\n')
  }

  function onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => undefined)
    handleUpgrade(req, socket, head).catch((err: unknown) => {
      log.error({ err: { message: (err as Error).message } }, 'agent upgrade failed')
      socket.destroy()
    })
  }

  async function handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    const remoteAddress = normaliseIp(socket.remoteAddress ?? '')
    const refuse = (status: number, body: string, extra = ''): void => {
      socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`)
    }
    if (req.rawHeaders.length > 2 * MAX_UPGRADE_HEADERS) return refuse(431, `PL_ERR_HTTP_BAD_REQUEST: more than ${MAX_UPGRADE_HEADERS} header lines\n`)
    if (!(await failures.peek(remoteAddress)).allowed) {
      log.warn({ remote: remoteAddress }, 'agent authentication rate-limited')
      failed('rate_limited')
      return refuse(429, 'too many failed attempts\n', 'retry-after: 60\r\n')
    }
    const agent = authenticate(deps.config(), req.headers.authorization)
    if (agent === null) {
      const hit = await failures.hit(remoteAddress)
      log.warn({ remote: remoteAddress, code: 'PL_ERR_AUTH_BAD_TOKEN' }, 'agent authentication failed')
      failed(hit.allowed ? 'bad_token' : 'rate_limited')
      return hit.allowed ? refuse(401, GENERIC_401) : refuse(429, 'too many failed attempts\n', `retry-after: ${hit.retryAfterS}\r\n`)
    }
    const policy = deps.config().agents[agent]!
    let certSerial: string | null = null
    if (deps.clientCerts) {
      const tlsSocket = socket as TLSSocket
      const verdict = checkClientCert(tlsSocket, agent, deps.revokedSerials())
      if (verdict.ok) certSerial = verdict.serial ?? null
      else if (policy.require_cert) {
        void failures.hit(remoteAddress)
        log.warn({ agent, remote: remoteAddress, code: verdict.code, reason: verdict.reason, serial: verdict.serial, detail: verdict.detail }, 'agent certificate rejected')
        failed('cert_rejected')
        return refuse(403, `${verdict.code}: ${verdict.reason}\n`)
      }
    } else if (policy.require_cert) {
      failed('cert_required')
      return refuse(403, 'PL_ERR_AUTH_CERT_REQUIRED: the relay has no TLS configured for client certificates\n')
    }
    // Each agent process names itself by an instance id it keeps for its lifetime: a reconnect of
    // the same process replaces its stale session at once, other processes of this identity (a
    // service and a quick share on one laptop) get sessions of their own.
    const instance = instanceOf(req.headers[INSTANCE_HEADER])
    if (instance === null) {
      failed('bad_instance')
      return refuse(400, `PL_ERR_PROTO_BAD_MESSAGE: invalid ${INSTANCE_HEADER} header\n`)
    }
    // A process keeps one link per relay: a reconnect of the same link replaces its stale session
    // at once (onAgent), a second link of a process that has a live one here is refused.
    const link = instanceOf(req.headers[LINK_HEADER])
    if (link === null) return refuse(400, `PL_ERR_PROTO_BAD_MESSAGE: invalid ${LINK_HEADER} header\n`)
    if (deps.linkConflict?.(agent, instance, link) === true) {
      log.info({ agent, instance, link, remote: remoteAddress }, 'second link of one agent process refused')
      return refuse(409, 'PL_ERR_LINK_DUPLICATE: this agent process already holds a link to this relay\n')
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      socket.setNoDelay(true)
      deps.onAgent({ agent, instance, link, tokenSha256: policy.token_sha256, ws, certSerial, remoteAddress })
    })
  }

  return { onUpgrade, onRequest }
}

/** The dedicated agents listener (`listen.agents: host:port`): every path is the agents' endpoint. */
export function createAgentListener(deps: AgentListenerDeps): http.Server {
  const { tlsOptions, ...rest } = deps
  const endpoint = createAgentEndpoint({ ...rest, clientCerts: tlsOptions !== null })
  // Pre-auth sockets are bounded in time: TLS handshake, then the upgrade request, each within
  // HANDSHAKE_TIMEOUT_MS, checked every second (Node's default check interval is 30 s).
  const timing = { connectionsCheckingInterval: 1000 }
  const server = tlsOptions
    ? https.createServer({ ...tlsOptions, ...timing, handshakeTimeout: HANDSHAKE_TIMEOUT_MS })
    : http.createServer(timing)
  server.headersTimeout = HANDSHAKE_TIMEOUT_MS
  server.requestTimeout = HANDSHAKE_TIMEOUT_MS
  // 0: Node must not drop header lines past a count silently (a token could hide behind them);
  // the upgrade handler refuses more than MAX_UPGRADE_HEADERS with 431 instead.
  server.maxHeadersCount = 0

  server.on('request', endpoint.onRequest)
  // A malformed or oversized upgrade request gets a status line before the close, never a bare
  // reset: an agent with a broken token sees why (SECURITY.md A1).
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // A pre-auth socket that sent nothing in time is just closed (SECURITY.md A10).
    if (!socket.writable || err.code === 'ECONNRESET' || err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      socket.destroy()
      return
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400
    const body = `${CLIENT_ERROR_TEXT[status]}\n`
    socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
    // The peer need not read the answer: the socket goes within a second either way.
    setTimeout(() => socket.destroy(), 1000).unref()
  })
  server.on('tlsClientError', () => undefined)
  server.on('upgrade', endpoint.onUpgrade)
  return server
}

/** Returns the agent whose token this is. Checks every agent so timing says nothing about which. */
export function authenticate(config: RelayConfig, authorization: string | undefined): string | null {
  const parsed = parseBearer(authorization)
  const token = parsed ?? ''
  let found: string | null = null
  for (const [name, policy] of Object.entries(config.agents)) {
    if (tokenMatchesHash(token, policy.token_sha256) && parsed !== null) found = name
  }
  return found
}

/** The upgrade header naming which of the process's links this is (one per relay in a cluster). */
export const LINK_HEADER = 'x-porchlight-link'
/** The upgrade header carrying the agent process's instance id (docs/protocol.md). */
export const INSTANCE_HEADER = 'x-porchlight-instance'
/** What an agent without the header (an older version) is known as: its reconnects replace each other. */
export const DEFAULT_INSTANCE = 'default'
const INSTANCE_ID = /^[A-Za-z0-9_-]{1,64}$/

/** The instance id of an upgrade request, DEFAULT_INSTANCE without one, null when malformed or repeated. */
export function instanceOf(header: string | string[] | undefined): string | null {
  if (header === undefined) return DEFAULT_INSTANCE
  if (typeof header !== 'string') return null
  return INSTANCE_ID.test(header) ? header : null
}

function normaliseIp(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address
}

/** Header lines an upgrade request may carry; a real agent sends about ten. */
const MAX_UPGRADE_HEADERS = 100

const CLIENT_ERROR_TEXT: Record<number, string> = {
  400: 'PL_ERR_HTTP_BAD_REQUEST: malformed HTTP request',
  431: 'PL_ERR_HTTP_BAD_REQUEST: request headers too large',
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 408: 'Request Timeout', 409: 'Conflict', 429: 'Too Many Requests', 431: 'Request Header Fields Too Large' }
