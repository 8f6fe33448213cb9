// Fault-run load: origins that answer with their own identity, a bounded load of visitor requests,
// and a verdict for every request (complete, labelled error, visibly truncated, hung, misrouted).
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createTcpServer, type Socket } from 'node:net'
import type { Scope } from '../../e2e/harness/scope.js'
import { listenEphemeral } from '../../e2e/harness/tcp.js'

/** The body an identity origin sends: its identity repeated, so any byte of it names the origin. */
export function bodyFor(identity: string, bytes: number): Buffer {
  const unit = Buffer.from(`${identity}|`)
  const out = Buffer.allocUnsafe(bytes)
  for (let o = 0; o < bytes; o += unit.length) unit.copy(out, o, 0, Math.min(unit.length, bytes - o))
  return out
}

const hashes = new Map<string, string>()
function expectedSha(identity: string, bytes: number): string {
  const key = `${identity}/${bytes}`
  let h = hashes.get(key)
  if (h === undefined) {
    h = createHash('sha256').update(bodyFor(identity, bytes)).digest('hex')
    hashes.set(key, h)
  }
  return h
}

export interface IdentityOrigin {
  identity: string
  port: number
  url: string
  /** Requests that reached this origin. */
  readonly hits: number
  close(): Promise<void>
}

/**
 * An origin whose every answer carries `x-origin: IDENTITY` and a body made of its identity.
 * /data/N?pace=MS sends N bytes with a Content-Length in 8 pieces spread over MS; /chunked/N the
 * same without one; /hang never answers; /cut/N sends half of N declared bytes, then closes.
 */
export async function startIdentityOrigin(t: Scope, identity: string): Promise<IdentityOrigin> {
  let hits = 0
  const timers = new Set<NodeJS.Timeout>()
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    hits++
    req.resume()
    const url = new URL(req.url ?? '/', 'http://origin')
    const m = /^\/(data|chunked|cut)\/(\d+)$/.exec(url.pathname)
    if (url.pathname === '/hang') return
    if (!m) { res.writeHead(404, { 'x-origin': identity }); res.end(); return }
    const bytes = Number(m[2])
    const body = bodyFor(identity, bytes)
    const headers: Record<string, string | number> = { 'x-origin': identity, 'content-type': 'application/octet-stream' }
    if (m[1] !== 'chunked') headers['content-length'] = bytes
    res.writeHead(200, headers)
    if (m[1] === 'cut') {
      res.write(body.subarray(0, bytes >> 1), () => res.destroy())
      return
    }
    const paceMs = Number(url.searchParams.get('pace') ?? 0)
    const pieces = 8
    let i = 0
    const step = (): void => {
      if (res.destroyed) return
      const from = Math.floor((i * bytes) / pieces)
      const to = Math.floor(((i + 1) * bytes) / pieces)
      i++
      if (i >= pieces) { res.end(body.subarray(from)); return }
      res.write(body.subarray(from, to))
      const timer = setTimeout(() => { timers.delete(timer); step() }, paceMs / pieces)
      timers.add(timer)
    }
    step()
  })
  server.keepAliveTimeout = 2000
  const port = await listenEphemeral(t, server)
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    for (const timer of timers) clearTimeout(timer)
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => resolve()))
  }
  t.teardown(close)
  return { identity, port, url: `http://127.0.0.1:${port}`, get hits() { return hits }, close }
}

/**
 * A raw TCP origin that answers every request with the bytes its path names: /garbage, /cl-te
 * (both Content-Length and Transfer-Encoding), /bad-status, /huge-headers (64 KiB of headers).
 */
export async function startMalformedOrigin(t: Scope): Promise<{ port: number; url: string }> {
  const replies: Record<string, string> = {
    '/garbage': 'ZZZZ not http at all\r\n\r\n',
    '/cl-te': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    '/bad-status': 'HTTP/1.1 2000 Fine\r\nContent-Length: 2\r\n\r\nok',
    '/huge-headers': `HTTP/1.1 200 OK\r\n${Array.from({ length: 1024 }, (_, i) => `x-h${i}: ${'v'.repeat(60)}\r\n`).join('')}Content-Length: 2\r\n\r\nok`,
  }
  const sockets = new Set<Socket>()
  const server = createTcpServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => undefined)
    let head = ''
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      const path = /^[A-Z]+ (\S+)/.exec(head)?.[1] ?? '/'
      socket.end(replies[path] ?? replies['/garbage']!)
      head = ''
    })
  })
  const port = await listenEphemeral(t, server)
  t.teardown(() => { for (const s of sockets) s.destroy() })
  return { port, url: `http://127.0.0.1:${port}` }
}

// ---------------------------------------------------------------- the load and its verdicts

/**
 * complete: status and body hash right. labelled: 502/503/504 with x-porchlight-error. truncated:
 * a response head arrived and the connection closed before the body's end. hung: no end within
 * the request's timeout plus a margin. misrouted: anything from another site's origin. refused:
 * the connection was refused (nobody listening, e.g. the relay is down). reset: the connection
 * closed before any response head. other: anything else (a status or body nobody expected).
 */
export type Verdict = 'complete' | 'labelled' | 'truncated' | 'hung' | 'misrouted' | 'refused' | 'reset' | 'other'
export const VERDICTS: Verdict[] = ['complete', 'labelled', 'truncated', 'hung', 'misrouted', 'refused', 'reset', 'other']

export interface Planned {
  /** Host header (the site). */
  host: string
  /** The identity the site's origin answers with. */
  identity: string
  /** /data/N, /chunked/N, /cut/N or /hang, with any query. */
  path: string
}

export interface Outcome { planned: Planned; verdict: Verdict; status: number; detail: string; ms: number; startedAt: number }

/** Relay error pages that count as labelled; a restarted relay also answers 404 (unknown host) until an agent re-publishes. */
export const LABELLED_STATUSES: readonly number[] = [502, 503, 504]

/** Per-request budget beyond its timeout before it counts as hung. */
export const HUNG_MARGIN_MS = 2000

/** Every identity an origin in the run has; a body or header naming another than the expected one is misrouted. */
export function sendOne(port: number, p: Planned, timeoutMs: number, identities: readonly string[], labelledStatuses: readonly number[] = LABELLED_STATUSES): Promise<Outcome> {
  const startedAt = Date.now()
  const want = /^\/(?:data|chunked|cut)\/(\d+)/.exec(p.path)
  const wantBytes = want ? Number(want[1]) : -1
  return new Promise(resolve => {
    let settled = false
    let status = 0
    const finish = (verdict: Verdict, detail = ''): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      req.destroy()
      resolve({ planned: p, verdict, status, detail, ms: Date.now() - startedAt, startedAt })
    }
    const req = request({ host: '127.0.0.1', port, path: p.path, headers: { host: p.host }, agent: false })
    const timer = setTimeout(() => finish('hung', `no end within ${timeoutMs + HUNG_MARGIN_MS} ms`), timeoutMs + HUNG_MARGIN_MS)
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (status !== 0) return // after the head, the response's close decides
      finish(err.code === 'ECONNREFUSED' ? 'refused' : 'reset', err.code ?? err.message)
    })
    req.on('response', (res: IncomingMessage) => {
      status = res.statusCode ?? 0
      const origin = res.headers['x-origin']
      if (typeof origin === 'string' && origin !== p.identity) { finish('misrouted', `x-origin ${origin}`); return }
      const hash = createHash('sha256')
      let bytes = 0
      let sample = ''
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk)
        bytes += chunk.length
        if (sample.length < 256) sample += chunk.toString('latin1', 0, Math.min(chunk.length, 256))
      })
      res.on('error', () => undefined)
      res.on('close', () => {
        const foreign = identities.find(id => id !== p.identity && sample.includes(`${id}|`))
        if (foreign !== undefined) { finish('misrouted', `body from ${foreign}`); return }
        if (!res.complete) { finish('truncated', `${bytes} bytes then closed`); return }
        if (labelledStatuses.includes(status)) {
          finish(res.headers['x-porchlight-error'] !== undefined ? 'labelled' : 'other', `${status} ${String(res.headers['x-porchlight-error'] ?? 'without x-porchlight-error')}`)
          return
        }
        if (status === 200 && bytes === wantBytes && hash.digest('hex') === expectedSha(p.identity, wantBytes)) { finish('complete'); return }
        finish('other', `${status} ${bytes} bytes`)
      })
    })
    req.end()
  })
}

export interface LoadOptions {
  port: number | (() => number)
  plan: Planned[]
  concurrency: number
  /** A request's own timeout; past it plus HUNG_MARGIN_MS it is hung. */
  timeoutMs: number
  /** Gap between starting requests (spreads the load over the fault). */
  spacingMs?: number
  /** Pause after a refused connection (the relay is down), so the plan outlasts the outage. */
  refusedPauseMs?: number
  identities: readonly string[]
  labelledStatuses?: readonly number[]
}

/** Sends the plan with at most `concurrency` requests in flight; resolves with every outcome. */
export async function runLoad(opts: LoadOptions): Promise<Outcome[]> {
  const outcomes: Outcome[] = new Array(opts.plan.length)
  let next = 0
  const port = typeof opts.port === 'function' ? opts.port : () => opts.port as number
  const worker = async (): Promise<void> => {
    while (next < opts.plan.length) {
      const i = next++
      const o = await sendOne(port(), opts.plan[i]!, opts.timeoutMs, opts.identities, opts.labelledStatuses)
      outcomes[i] = o
      if (o.verdict === 'refused' && opts.refusedPauseMs) await sleep(opts.refusedPauseMs)
      else if (opts.spacingMs) await sleep(opts.spacingMs)
    }
  }
  await Promise.all(Array.from({ length: opts.concurrency }, worker))
  return outcomes
}

export function tally(outcomes: readonly Outcome[]): Record<Verdict, number> {
  const counts = Object.fromEntries(VERDICTS.map(v => [v, 0])) as Record<Verdict, number>
  for (const o of outcomes) counts[o.verdict]++
  return counts
}

/** The one-line figure for the issue note: `fault-run NAME: sent N complete N labelled N ...`. */
export function summary(name: string, outcomes: readonly Outcome[], ms: number): string {
  const c = tally(outcomes)
  return `fault-run ${name}: sent ${outcomes.length} complete ${c.complete} labelled ${c.labelled} truncated ${c.truncated} hung ${c.hung} misrouted ${c.misrouted} refused ${c.refused} reset ${c.reset} other ${c.other} in ${ms} ms`
}

/** Up to `n` examples of outcomes with the given verdicts, for assertion messages. */
export function examples(outcomes: readonly Outcome[], verdicts: Verdict[], n = 5): string {
  return outcomes.filter(o => verdicts.includes(o.verdict)).slice(0, n).map(o => `${o.planned.host}${o.planned.path} -> ${o.verdict} (${o.detail}, ${o.ms} ms)`).join('; ')
}

export function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

// ---------------------------------------------------------------- process figures

export function fdCount(pid: number): number {
  try { return readdirSync(`/proc/${pid}/fd`).length } catch { return -1 }
}

export function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Math.round(Number(m[1]) / 1024) : -1
  } catch { return -1 }
}

// ---------------------------------------------------------------- back to baseline

export interface Baseline { sessions: number; streams: number; fds: number; rssMb: number }

interface RelayLike { pid: number; connectedAgents(): Promise<Array<{ name: string; streams: number }>> }

/** Sessions, streams (summed over sessions), fds and RSS of the relay now. */
export async function relayFigures(relay: RelayLike): Promise<Baseline> {
  const agents = await relay.connectedAgents()
  return { sessions: agents.length, streams: agents.reduce((n, a) => n + a.streams, 0), fds: fdCount(relay.pid), rssMb: rssMb(relay.pid) }
}

/** Polls until the relay holds `base.sessions` sessions with `base.streams` streams and its fds settle; returns what it saw last. */
export async function backToBaseline(relay: RelayLike, base: Baseline, opts: { timeoutMs?: number; fdSlack?: number } = {}): Promise<{ now: Baseline; ok: boolean; ms: number }> {
  const started = Date.now()
  const fdSlack = opts.fdSlack ?? 16
  for (;;) {
    let now: Baseline
    try { now = await relayFigures(relay) } catch { now = { sessions: -1, streams: -1, fds: -1, rssMb: -1 } }
    const ok = now.sessions === base.sessions && now.streams === base.streams && now.fds <= base.fds + fdSlack
    const ms = Date.now() - started
    if (ok || ms > (opts.timeoutMs ?? 15_000)) return { now, ok, ms }
    await sleep(200)
  }
}
