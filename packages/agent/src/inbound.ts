import type { Duplex } from 'node:stream'
import type { AgentTunnel } from '@porchlight/shared/config'
import type { ErrorCode } from '@porchlight/shared/errors'
import type { Logger } from '@porchlight/shared/log'
import { parseStreamHead, readHead, writeHead } from '@porchlight/shared/protocol'
import { handleHttpStream, type OriginAgents } from './tunnels/http.js'
import { handleTcpStream } from './tunnels/tcp.js'
import { handleHttpConnection } from './tunnels/http-connection.js'
import type { TrafficHook } from './inspector/traffic.js'

export type HttpTunnel = Extract<AgentTunnel, { kind: 'http' }>
export type TcpTunnel = Extract<AgentTunnel, { kind: 'tcp' }>

/** What the agent serves right now: its own config plus the hostnames the relay accepted. */
export interface RouteTable {
  /** http tunnels by id; `acceptedHost` is null until the relay accepted the tunnel. */
  http: ReadonlyMap<string, { tunnel: HttpTunnel; acceptedHost: string | null }>
  tcp: ReadonlyMap<string, TcpTunnel>
}

export interface InboundDeps {
  routes: () => RouteTable
  origins: OriginAgents
  log: Logger
  /** Watches http exchanges (inspector, terminal view); null when nobody does. */
  traffic?: TrafficHook | null
  /** How long the relay has to send a stream head (bounded so idle streams cannot pile up). */
  headTimeoutMs?: number
  /** The agent is stopping: an http stream is told the tunnel is offline (503), others reset. */
  stopping?: boolean
}

export const HEAD_TIMEOUT_MS = 10_000

/**
 * One relay-opened stream: read and validate its head, check that it names one of OUR tunnels
 * (and for http the hostname the relay accepted for it), then hand it to the tunnel handler.
 * Anything else is answered with PL_ERR_POLICY_NOT_PUBLISHED and nothing is dialled
 * (SECURITY.md A18: the agent only ever dials targets from its own config).
 */
export async function serveInboundStream(stream: Duplex, deps: InboundDeps): Promise<void> {
  // Every stream gets an error listener before anything else can fail (rule 7: errors are local).
  stream.on('error', (err) => deps.log.debug({ err }, 'inbound stream error'))
  let raw: unknown
  try {
    raw = await readHead(stream, deps.headTimeoutMs ?? HEAD_TIMEOUT_MS)
  } catch (err) {
    deps.log.warn({ err }, 'inbound stream without a valid head')
    stream.destroy()
    return
  }
  const parsed = parseStreamHead(raw)
  if (!parsed.ok) {
    deps.log.warn({ issue: parsed.issue }, 'inbound stream head rejected')
    rejectStream(stream, 'PL_ERR_PROTO_BAD_MESSAGE', 'invalid stream head')
    return
  }
  const head = parsed.head
  if (deps.stopping === true) {
    if (head.t === 'http' || head.t === 'http-conn') rejectStream(stream, 'PL_ERR_HTTP_TUNNEL_OFFLINE', 'the agent is stopping')
    else stream.destroy()
    return
  }
  const routes = deps.routes()
  if (head.t === 'http' || head.t === 'http-conn') {
    const route = routes.http.get(head.tunnel)
    if (route === undefined || route.acceptedHost === null || normalizeHost(head.host) !== route.acceptedHost) {
      deps.log.warn({ tunnel: head.tunnel, host: head.host }, 'relay asked for an http tunnel this agent does not publish')
      rejectStream(stream, 'PL_ERR_POLICY_NOT_PUBLISHED', `the agent does not publish ${head.host}`)
      return
    }
    if (head.t === 'http-conn') handleHttpConnection(stream, head, route.tunnel, { log: deps.log, traffic: deps.traffic ?? null })
    else handleHttpStream(stream, head, route.tunnel, { log: deps.log, agents: deps.origins, traffic: deps.traffic ?? null })
    return
  }
  if (head.t === 'tcp') {
    const tunnel = routes.tcp.get(head.tunnel)
    if (tunnel === undefined) {
      deps.log.warn({ tunnel: head.tunnel }, 'relay asked for a tcp tunnel this agent does not publish')
      rejectStream(stream, 'PL_ERR_POLICY_NOT_PUBLISHED', `the agent does not publish ${head.tunnel}`)
      return
    }
    handleTcpStream(stream, head, tunnel, deps.log.child({ tunnel: tunnel.id }))
    return
  }
  // Forward heads travel agent -> relay only.
  deps.log.warn({ head: head.t }, 'relay opened a stream with an agent-only head')
  rejectStream(stream, 'PL_ERR_POLICY_NOT_PUBLISHED', 'the agent does not accept forward streams')
}

/** Error head, FIN, and whatever the relay still sends is drained so the stream closes both ways. */
export function rejectStream(stream: Duplex, code: ErrorCode, message: string): void {
  try {
    writeHead(stream, { t: 'error', code, message })
    stream.end()
    stream.resume()
  } catch {
    stream.destroy()
  }
}

/** Lower-case, no trailing dot, no port: the form the relay's accepted URL gives us. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase()
  if (!h.startsWith('[')) h = h.replace(/:\d+$/, '')
  return h.endsWith('.') ? h.slice(0, -1) : h
}
