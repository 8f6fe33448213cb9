import http from 'node:http'
import https from 'node:https'
import { isIP } from 'node:net'
import type { Pool } from 'undici'

/** What the origin code needs from an `http:` tunnel of the agent config. */
export interface HttpTunnelTarget {
  id: string
  /** Origin base URL, e.g. "http://127.0.0.1:3000" (a path prefix is allowed). */
  to: string
  host_header: string | null
}

/** A tunnel's `to`, parsed once into what a client needs. */
export interface OriginTarget {
  protocol: 'http:' | 'https:'
  secure: boolean
  /** Without IPv6 brackets. */
  hostname: string
  port: number
  /** host[:port] as written in `to` (the default Host header). */
  host: string
  pathname: string
  /** SNI for https origins. */
  tls: { servername?: string }
  /** scheme://host:port, the key of its connection pool. */
  origin: string
}

/** Connections to one origin; bounded like the old http.Agent (maxSockets 256). */
const MAX_CONNECTIONS_PER_ORIGIN = 256

/**
 * Keep-alive connection pools to local origins, shared by every stream of the agent.
 * Requests go through undici pools: measured here (50 concurrent GETs against a Node origin) it
 * costs about half the CPU per request of http.request, and the agent's CPU is the tunnel's limit.
 * WebSocket upgrades keep Node's http client, whose 'upgrade' event hands over the raw socket.
 */
export class OriginAgents {
  readonly http = new http.Agent(NODE_AGENT_OPTIONS)
  readonly https = new https.Agent(NODE_AGENT_OPTIONS)
  private readonly pools = new Map<string, Pool>()
  /** The same lookup by target object, without building the key string per request. */
  private readonly byTarget = new WeakMap<OriginTarget, Pool>()

  /** The pool for a target; one per origin and SNI name. */
  pool(target: OriginTarget): Pool {
    const known = this.byTarget.get(target)
    if (known !== undefined && !known.destroyed) return known
    const key = `${target.origin}|${target.tls.servername ?? ''}`
    let pool = this.pools.get(key)
    if (pool === undefined) {
      pool = new (undiciPool())(target.origin, {
        connections: MAX_CONNECTIONS_PER_ORIGIN,
        pipelining: 1,
        // The relay bounds how long an origin may take (limits.origin_timeout_ms) and resets the
        // stream; an SSE stream may stay quiet for hours, so no client-side body timeout.
        headersTimeout: 0,
        bodyTimeout: 0,
        keepAliveTimeout: 4_000,
        connect: target.secure ? { ...target.tls } : {},
      })
      this.pools.set(key, pool)
    }
    this.byTarget.set(target, pool)
    return pool
  }

  destroy(): void {
    this.http.destroy()
    this.https.destroy()
    for (const pool of this.pools.values()) void pool.destroy().catch(() => undefined)
    this.pools.clear()
  }
}

/**
 * undici (about 8 MiB of RSS) loads on the first per-request exchange: connection streams, the
 * common path, never use it, so an agent that only serves those never loads it.
 */
let PoolClass: typeof Pool | null = null

/** Null once undici is loaded; otherwise the load, after which the caller starts again. */
export function loadUndici(): Promise<void> | null {
  if (PoolClass !== null) return null
  // `default` (module.exports): a bundle's import() of a CommonJS package has no named exports.
  return import('undici').then((undici) => { PoolClass = undici.default.Pool })
}

function undiciPool(): typeof Pool {
  if (PoolClass === null) throw new Error('undici is not loaded yet (call loadUndici first)')
  return PoolClass
}

const NODE_AGENT_OPTIONS = { keepAlive: true, keepAliveMsecs: 1_000, maxSockets: MAX_CONNECTIONS_PER_ORIGIN, maxFreeSockets: MAX_CONNECTIONS_PER_ORIGIN, noDelay: true }

export function buildOriginAgents(): OriginAgents {
  return new OriginAgents()
}

export function destroyOriginAgents(agents: OriginAgents): void {
  agents.destroy()
}

/** Parsed per tunnel object, not per request (a config reload brings new objects). */
const originTargets = new WeakMap<HttpTunnelTarget, OriginTarget | Error>()

export function originTarget(tunnel: HttpTunnelTarget): OriginTarget | Error {
  let target = originTargets.get(tunnel)
  if (target === undefined) {
    target = parseOriginTarget(tunnel)
    originTargets.set(tunnel, target)
  }
  return target
}

function parseOriginTarget(tunnel: HttpTunnelTarget): OriginTarget | Error {
  let url: URL
  try {
    url = new URL(tunnel.to)
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err))
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return new Error(`unsupported origin scheme ${url.protocol}`)
  const secure = url.protocol === 'https:'
  const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port)
  return {
    protocol: url.protocol,
    secure,
    hostname: url.hostname.replace(/^\[|\]$/g, ''),
    port,
    host: url.host,
    pathname: url.pathname,
    tls: secure ? tlsServername(tunnel.host_header, url.hostname) : {},
    origin: `${url.protocol}//${url.hostname}:${port}`,
  }
}

/** SNI for an https origin: the expected virtual host when given, never an IP literal. */
function tlsServername(hostHeader: string | null, hostname: string): { servername?: string } {
  const candidate = (hostHeader ?? hostname).replace(/:\d+$/, '').replace(/^\[|\]$/g, '')
  return isIP(candidate) === 0 ? { servername: candidate } : {}
}
