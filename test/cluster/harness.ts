import { writeFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import type { Scope } from '../e2e/harness/scope.js'
import { ChildHandle, childEnv } from '../e2e/harness/child.js'
import { RelayProcess, startAgent, type AgentProcess } from '../e2e/harness/processes.js'
import { childDir } from '../e2e/harness/workdir.js'
import { pollUntil } from '../e2e/harness/wait.js'

/**
 * The cluster suite's pieces: Debian's redis-server and haproxy run as children on loopback, three
 * relays on 127.0.0.11-13 (each its own ports, the cluster's real shape), echo origins that name
 * the agent and Host they served, a TCP hop that passes, blackholes or resets, and a load driver
 * that records every response so a test can count failures and misroutes.
 */

export const RELAY_IPS = ['127.0.0.11', '127.0.0.12', '127.0.0.13'] as const
export const REDIS_BIN = '/usr/bin/redis-server'
export const HAPROXY_BIN = '/usr/sbin/haproxy'

/** A port free on every relay address a moment ago: members listen on the same ports, as on real machines. */
export async function freePortOnAll(hosts: readonly string[], taken: ReadonlySet<number> = new Set()): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await freePortOn(hosts[0]!)
    if (taken.has(port)) continue
    const free = await Promise.all(hosts.slice(1).map((h) => bindable(h, port)))
    if (free.every((f) => f)) return port
  }
  throw new Error(`no port free on all of ${hosts.join(', ')}`)
}

function bindable(host: string, port: number): Promise<boolean> {
  const server = createServer()
  return new Promise((resolve) => {
    server.once('error', () => resolve(false))
    server.listen(port, host, () => server.close(() => resolve(true)))
  })
}

/** A port free on `host` a moment ago (children that cannot report a port 0 binding need one). */
export async function freePortOn(host: string): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, () => resolve())
  })
  const port = (server.address() as { port: number }).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

// ---------------------------------------------------------------- redis

export interface RedisProcess {
  port: number
  url: string
  handle: ChildHandle
  /** Starts it again on the same port (after a kill). */
  restart(): Promise<void>
}

export async function startRedis(t: Scope): Promise<RedisProcess> {
  const dir = childDir(t, 'redis')
  const port = await freePortOn('127.0.0.1')
  const spawnOne = async (): Promise<ChildHandle> => {
    const handle = new ChildHandle(t, {
      label: 'redis',
      command: REDIS_BIN,
      args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning', '--protected-mode', 'no'],
      env: childEnv(dir),
      cwd: dir,
    })
    await waitForPort('127.0.0.1', port, 10_000)
    return handle
  }
  const r: RedisProcess = {
    port,
    url: `redis://127.0.0.1:${port}`,
    handle: await spawnOne(),
    async restart() { r.handle = await spawnOne() },
  }
  return r
}

async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const { ok } = await pollUntil(() => new Promise<boolean>((resolve) => {
    const s = connect({ host, port }, () => { s.destroy(); resolve(true) })
    s.on('error', () => resolve(false))
  }), (v) => v, { timeoutMs, intervalMs: 50 })
  if (!ok) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`)
}

// ---------------------------------------------------------------- tcp hop

export type HopMode = 'pass' | 'blackhole' | 'reset'

/** A TCP hop to host:port: `pass` relays bytes, `blackhole` holds them (no FIN, no RST), `reset` drops every connection and refuses new ones. */
export interface TcpHop {
  host: string
  port: number
  set(mode: HopMode): void
}

export async function startTcpHop(t: Scope, target: { host: string; port: number }, listenHost = '127.0.0.1'): Promise<TcpHop> {
  let mode: HopMode = 'pass'
  const pairs = new Set<{ near: Socket; far: Socket | null }>()
  // Blackholed bytes wait in kernel buffers (reading paused), as TCP retransmits would deliver them
  // once the path is back; connections opened meanwhile are accepted and held.
  const join = (pair: { near: Socket; far: Socket | null }): void => {
    const far = connect(target)
    pair.far = far
    const close = (): void => { pair.near.destroy(); far.destroy(); pairs.delete(pair) }
    far.on('error', close).on('close', close)
    pair.near.on('data', (c: Buffer) => { if (!far.write(c)) pair.near.pause() })
    far.on('data', (c: Buffer) => { if (!pair.near.write(c)) far.pause() })
    far.on('drain', () => { if (mode === 'pass') pair.near.resume() })
    pair.near.on('drain', () => { if (mode === 'pass') far.resume() })
    pair.near.resume()
  }
  const server: Server = createServer({ pauseOnConnect: true }, (near) => {
    if (mode === 'reset') return near.resetAndDestroy()
    const pair: { near: Socket; far: Socket | null } = { near, far: null }
    pairs.add(pair)
    near.on('error', () => pair.far?.destroy()).on('close', () => { pair.far?.destroy(); pairs.delete(pair) })
    if (mode === 'pass') join(pair)
  })
  await new Promise<void>((resolve) => server.listen(0, listenHost, () => resolve()))
  t.teardown(() => { for (const p of pairs) { p.near.destroy(); p.far?.destroy() } server.close() })
  return {
    host: listenHost,
    port: (server.address() as { port: number }).port,
    set(next: HopMode) {
      mode = next
      for (const p of [...pairs]) {
        if (next === 'reset') { p.near.resetAndDestroy(); p.far?.destroy() }
        else if (next === 'blackhole') { p.near.pause(); p.far?.pause() }
        else if (p.far === null) join(p)
        else { p.near.resume(); p.far.resume() }
      }
    },
  }
}

// ---------------------------------------------------------------- origins

export interface EchoOrigin {
  url: string
  served: number
}

/** An origin answering every request with JSON naming the agent behind it and the Host it saw. */
export async function startEchoOrigin(t: Scope, agent: string): Promise<EchoOrigin> {
  const origin = { url: '', served: 0 }
  const server = http.createServer((req, res) => {
    origin.served++
    const body = JSON.stringify({ agent, host: req.headers['x-forwarded-host'] ?? req.headers.host ?? '' })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
  server.keepAliveTimeout = 1000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  origin.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  return origin
}

// ---------------------------------------------------------------- relays

export interface ClusterRelay {
  id: string
  ip: string
  proc: RelayProcess
  /** public_tls is 0 unless ClusterOptions.publicTls. */
  ports: { public: number; public_tls: number; agents: number; admin: number; peer: number }
  agentsUrl: string
  peerUrl: string
  adminUrl: string
  /** SIGTERM (drains), SIGKILL, SIGSTOP, SIGCONT. */
  signal(sig: NodeJS.Signals): void
  /** Starts it again on the same addresses. */
  restart(): Promise<void>
  /** GET /readyz on the peer listener: the status, or 0 when nothing answers within 1 s. */
  readyz(): Promise<number>
  /** Sessions of the named agent this relay holds. */
  linksOf(agent: string): Promise<number>
  /** The hop agents reach this relay through (ClusterOptions.agentsHops). */
  agentsHop: TcpHop | null
}

export interface ClusterOptions {
  redis: RedisProcess
  /** Agent names, each allowed `<name>.localhost` (owned by config: no lease), unless `hosts` says otherwise. */
  agents: string[]
  /**
   * Every agent's `hosts` patterns instead, e.g. `['*.localhost']` to make every name contested
   * (leased); or each agent's own, by name (names no two agents share need no lease).
   */
  hosts?: string[] | Record<string, string[]>
  /** relay.yaml `domain` (default localhost). */
  domain?: string
  /**
   * listen.public_tls on every relay (same port on each address): `true` with no certificate files
   * (ACME provides them), or the certificates to serve (e2e/harness/pki.ts issueSiteCert).
   */
  publicTls?: boolean | { certs: Array<{ cert: string; key: string }> }
  /** Only the first N relays start (default all); a test starts the others with `proc.start()`. */
  startCount?: number
  /** Called with every relay built (configs and ports known) before any starts, e.g. to start a CA that needs their ports. */
  beforeStart?: (relays: ClusterRelay[]) => Promise<void>
  /** The Redis address relay i uses (default: redis itself), e.g. through a TcpHop. */
  redisUrlFor?: (i: number) => string
  heartbeat?: { interval_ms: number; timeout_ms: number }
  drainDelayMs?: number
  /** cluster.lease_ttl_ms (leases on hostnames several agents' policies admit). */
  leaseTtlMs?: number
  /** Extra relay.yaml keys for every relay. */
  extra?: Record<string, unknown>
  count?: number
  /**
   * Agents listeners on 127.0.0.1 (each its own port), advertised as wss://localhost:PORT with TLS
   * from `pkiFor(i)` (its pki directory with server.crt/key for localhost), so agents can use
   * client certificates against the test CA.
   */
  tlsAgents?: { pkiFor: (i: number) => string }
  /** Relay TCP ports every agent may listen on. */
  tcpPorts?: number[]
  /** listen.public_proxy_protocol: true (with trust_proxy in `extra`). */
  proxyProtocol?: boolean
  /** Relays (by index) whose advertised agents URL goes through a TcpHop, so a test can cut that link alone. */
  agentsHops?: number[]
  /** cluster.peer_tls for relay i (its certificate must name its IP): listen.peer is https with mTLS. */
  peerTls?: (i: number) => { cert: string; key: string; ca: string }
}

export async function startCluster(t: Scope, opts: ClusterOptions): Promise<ClusterRelay[]> {
  const secretDir = childDir(t, 'cluster')
  const secretFile = join(secretDir, 'cluster.secret')
  writeFileSync(secretFile, `${'5e'.repeat(32)}\n`, { mode: 0o600 })
  const tokens: Record<string, { token: string }> = {}
  const relays: ClusterRelay[] = []
  const count = opts.count ?? 3
  const ips = RELAY_IPS.slice(0, count)
  const taken = new Set<number>()
  const pick = async (): Promise<number> => {
    const port = await freePortOnAll(ips, taken)
    taken.add(port)
    return port
  }
  const shared = { public: await pick(), public_tls: opts.publicTls !== undefined && opts.publicTls !== false ? await pick() : 0, agents: await pick(), admin: await pick(), peer: await pick() }
  for (let i = 0; i < count; i++) {
    const ip = RELAY_IPS[i]!
    const id = `r${i + 1}`
    const ports = { ...shared }
    if (opts.tlsAgents) ports.agents = await freePortOn('127.0.0.1')
    const agentsHost = opts.tlsAgents ? '127.0.0.1' : ip
    const hop = opts.agentsHops?.includes(i) === true ? await startTcpHop(t, { host: agentsHost, port: ports.agents }) : null
    const advertisedAgents = opts.tlsAgents ? `wss://localhost:${ports.agents}` : hop ? `ws://${hop.host}:${hop.port}` : `ws://${ip}:${ports.agents}`
    const pki = opts.tlsAgents?.pkiFor(i)
    const agents = Object.fromEntries(opts.agents.map((name) => [name, { hosts: hostsOf(opts.hosts, name), ...(opts.tcpPorts ? { tcp_ports: opts.tcpPorts } : {}), ...(tokens[name] ? { token: tokens[name].token } : {}) }]))
    const proc = new RelayProcess(t, {
      agents,
      ...(opts.domain ? { domain: opts.domain } : {}),
      ...(opts.heartbeat ? { heartbeat: opts.heartbeat } : {}),
      extra: {
        cluster: {
          id,
          redis: opts.redisUrlFor?.(i) ?? opts.redis.url,
          secret_file: secretFile,
          advertise: { agents: advertisedAgents, peer: `${opts.peerTls ? 'https' : 'http'}://${ip}:${ports.peer}` },
          ...(opts.peerTls ? { peer_tls: opts.peerTls(i) } : {}),
          drain_delay_ms: opts.drainDelayMs ?? 1000,
          ...(opts.leaseTtlMs !== undefined ? { lease_ttl_ms: opts.leaseTtlMs } : {}),
        },
        ...(pki ? { pki, tls: { cert: join(pki, 'server.crt'), key: join(pki, 'server.key') } } : {}),
        ...opts.extra,
      },
    })
    // Every relay knows the same tokens: the first relay's are reused by the others.
    for (const name of opts.agents) tokens[name] ??= { token: proc.tokens[name]! }
    proc.config.listen = {
      public: `${ip}:${ports.public}`,
      ...(ports.public_tls !== 0 ? { public_tls: { address: `${ip}:${ports.public_tls}`, certs: typeof opts.publicTls === 'object' ? opts.publicTls.certs : [] } } : {}),
      agents: `${agentsHost}:${ports.agents}`, admin: `${ip}:${ports.admin}`, peer: `${ip}:${ports.peer}`,
      ...(opts.proxyProtocol === true ? { public_proxy_protocol: true } : {}),
    } as typeof proc.config.listen
    relays.push(clusterRelay(id, ip, proc, ports, hop))
  }
  await opts.beforeStart?.(relays)
  const starting = relays.slice(0, opts.startCount ?? count)
  // One after the other: three cold node starts at once on a loaded 2-core machine can each take
  // longer than the harness's ready timeout.
  for (const r of starting) await r.proc.start()
  // Started together, a member may have read the member set before the others wrote theirs:
  // wait until every one has seen all (one heartbeat, about a second).
  await Promise.all(starting.map((r) => r.proc.waitForLog((l) => l['msg'] === 'cluster members' && Array.isArray(l['members']) && l['members'].length === starting.length, 10_000, `${r.id} seeing ${starting.length} members`)))
  return relays
}

function peerUrlOf(proc: RelayProcess): string {
  return String((proc.config['cluster'] as { advertise: { peer: string } }).advertise.peer)
}

function clusterRelay(id: string, ip: string, proc: RelayProcess, ports: ClusterRelay['ports'], agentsHop: TcpHop | null): ClusterRelay {
  const adminUrl = `http://${ip}:${ports.admin}`
  const agentsUrl = String((proc.config['cluster'] as { advertise: { agents: string } }).advertise.agents)
  return {
    id, ip, proc, ports, agentsHop,
    agentsUrl: agentsHop ? `ws://${ip}:${ports.agents}` : agentsUrl,
    peerUrl: peerUrlOf(proc),
    adminUrl,
    signal(sig) { process.kill(proc.pid, sig) },
    async restart() {
      if (proc.current.running) await proc.kill('SIGKILL')
      await proc.start()
    },
    readyz: () => new Promise<number>((resolve) => {
      // Like a balancer's check: no client certificate (and, with peer_tls, no verification).
      const get = peerUrlOf(proc).startsWith('https:') ? https.get : http.get
      const req = get({ host: ip, port: ports.peer, path: '/readyz', agent: false, timeout: 1000, rejectUnauthorized: false }, (res) => { res.resume(); resolve(res.statusCode ?? 0) })
      req.on('timeout', () => req.destroy())
      req.on('error', () => resolve(0))
    }),
    async linksOf(agent) {
      try {
        const res = await fetch(`${adminUrl}/api/agents`, { headers: { authorization: `Bearer ${proc.adminToken}` }, signal: AbortSignal.timeout(1000) })
        if (res.status !== 200) return -1
        const list = (await res.json()) as Array<{ name: string }>
        return list.filter((a) => a.name === agent).length
      } catch {
        return -1
      }
    },
  }
}

/** An agent publishing `<name>.localhost` to its echo origin, configured with the first relay's URL. */
export async function startClusterAgent(t: Scope, relays: ClusterRelay[], name: string, origin: Pick<EchoOrigin, 'url'>, env: Record<string, string> = {}, opts: { access?: Record<string, unknown>; inspect?: boolean } = {}): Promise<AgentProcess> {
  return startAgent(t, relays[0]!.proc, {
    name,
    tunnels: [{ http: name, to: origin.url, ...(opts.access ? { access: opts.access } : {}) }],
    extra: { relay: relays[0]!.agentsUrl, ...(opts.inspect === true ? { inspect: '127.0.0.1:0' } : {}) },
    env: { PORCHLIGHT_BACKOFF_MAX_MS: '500', ...env },
  })
}

/** Polls until every relay holds one link of every agent; resolves with the time it took. */
export async function waitForLinks(relays: ClusterRelay[], agents: string[], timeoutMs: number): Promise<{ ok: boolean; ms: number; counts: number[] }> {
  const r = await pollUntil(async () => Promise.all(relays.flatMap((relay) => agents.map((a) => relay.linksOf(a)))), (counts) => counts.every((c) => c === 1), { timeoutMs, intervalMs: 50 })
  return { ok: r.ok, ms: r.ms, counts: r.value }
}

// ---------------------------------------------------------------- haproxy

export interface Haproxy {
  port: number
  handle: ChildHandle
}

/**
 * HAProxy in TCP mode in front of the relays' public listeners: health checks GET /readyz on each
 * relay's peer listener every 200 ms (one failure marks it down, one success up), connection
 * failures retried on another relay (redispatch). `proxyV2` adds send-proxy-v2; `checkSsl` checks
 * over TLS without a client certificate (listen.peer with cluster.peer_tls).
 */
export async function startHaproxy(t: Scope, relays: ClusterRelay[], opts: { proxyV2?: boolean; checkSsl?: boolean } = {}): Promise<Haproxy> {
  const dir = childDir(t, 'haproxy')
  const port = await freePortOn('127.0.0.1')
  const servers = relays.map((r) => `  server ${r.id} ${r.ip}:${r.ports.public} check port ${r.ports.peer} inter 200 fall 1 rise 1 observe layer4 error-limit 1 on-error mark-down${opts.proxyV2 === true ? ' send-proxy-v2' : ''}${opts.checkSsl === true ? ' check-ssl verify none' : ''}`)
  const cfg = [
    'global',
    '  maxconn 2000',
    'defaults',
    '  mode tcp',
    '  timeout connect 1s',
    '  timeout client 30s',
    '  timeout server 30s',
    '  timeout check 500ms',
    '  retries 3',
    '  option redispatch 1',
    'frontend visitors',
    `  bind 127.0.0.1:${port}`,
    '  default_backend relays',
    'backend relays',
    '  balance roundrobin',
    '  option httpchk GET /readyz',
    '  http-check expect status 200',
    ...servers,
    '',
  ].join('\n')
  const file = join(dir, 'haproxy.cfg')
  writeFileSync(file, cfg)
  const handle = new ChildHandle(t, { label: 'haproxy', command: HAPROXY_BIN, args: ['-db', '-f', file], env: childEnv(dir), cwd: dir })
  await waitForPort('127.0.0.1', port, 10_000)
  return { port, handle }
}

// ---------------------------------------------------------------- load

export interface Outcome {
  startedAt: number
  endedAt: number
  host: string
  status: number
  /** The agent and Host the origin said served it, when the body parsed. */
  served: { agent: string; host: string } | null
  error: string | null
}

/** One request on a fresh connection; never throws. */
export function visit(port: number, host: string, timeoutMs = 10_000, address = '127.0.0.1', path = '/'): Promise<Outcome> {
  const startedAt = Date.now()
  return new Promise((resolve) => {
    const done = (status: number, served: Outcome['served'], error: string | null): void => resolve({ startedAt, endedAt: Date.now(), host, status, served, error })
    const req = http.get({ host: address, port, path, headers: { host }, agent: false, timeout: timeoutMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => {
        let served: Outcome['served'] = null
        try { served = JSON.parse(body) as Outcome['served'] } catch { /* a relay page, not the origin */ }
        done(res.statusCode ?? 0, served, null)
      })
      res.on('error', (err) => done(0, null, err.message))
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', (err) => done(0, null, err.message))
  })
}

function hostsOf(hosts: string[] | Record<string, string[]> | undefined, agent: string): string[] {
  if (hosts === undefined) return [`${agent}.localhost`]
  return Array.isArray(hosts) ? hosts : hosts[agent] ?? []
}

/** Starts `rate` requests per second for `durationMs`, alternating hosts; resolves with every outcome. */
export async function runLoad(port: number, hosts: string[], rate: number, durationMs: number): Promise<Outcome[]> {
  const pending: Array<Promise<Outcome>> = []
  const started = Date.now()
  let n = 0
  while (Date.now() - started < durationMs) {
    pending.push(visit(port, hosts[n % hosts.length]!))
    n++
    const next = started + (n * 1000) / rate
    await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())))
  }
  return Promise.all(pending)
}

/** Like runLoad, until stop(), which resolves with every outcome once the last request ended. */
export function startLoad(port: number, hosts: string[], rate: number): { stop(): Promise<Outcome[]> } {
  const pending: Array<Promise<Outcome>> = []
  const started = Date.now()
  let n = 0
  let timer: NodeJS.Timeout | null = null
  const tick = (): void => {
    pending.push(visit(port, hosts[n % hosts.length]!))
    n++
    timer = setTimeout(tick, Math.max(0, started + (n * 1000) / rate - Date.now()))
  }
  tick()
  return {
    stop() {
      if (timer) clearTimeout(timer)
      return Promise.all(pending)
    },
  }
}

/** Requests answered by the origin for another host or agent than asked: must stay 0. */
export function misrouted(outcomes: Outcome[], agentOf: (host: string) => string): Outcome[] {
  return outcomes.filter((o) => o.served !== null && (o.served.host.split(':')[0] !== o.host || o.served.agent !== agentOf(o.host)))
}

export function failures(outcomes: Outcome[]): Outcome[] {
  return outcomes.filter((o) => o.status !== 200 || o.served === null)
}
