import { randomBytes, timingSafeEqual } from 'node:crypto'
import type http from 'node:http'
import { PorchlightError } from '@porchlight/shared/errors'
import type { CaptureStore, ExchangeSummary } from './capture.js'
import { INSPECTOR_CSS, INSPECTOR_JS, inspectorHtml } from './page.js'
import { replayExchange, ReplayEdits, type ReplayDeps } from './replay.js'
import type { TrafficMonitor } from './traffic.js'

/** What the inspector routes need from the agent. */
export interface InspectorDeps {
  monitor: TrafficMonitor
  replay: Omit<ReplayDeps, 'monitor'>
}

export interface InspectorIo {
  readJson(req: http.IncomingMessage): Promise<unknown>
  sendJson(res: http.ServerResponse, status: number, value: unknown): void
}

/** Header the page (and scripts) send with replay and clear. */
export const TOKEN_HEADER = 'x-porchlight-token'

/** An event-stream client that stopped reading is dropped beyond this much queued output. */
const MAX_EVENT_BACKLOG_BYTES = 1024 * 1024
const EVENT_KEEPALIVE_MS = 15_000

const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/**
 * The request inspector behind the status API: the page at `/`, the captured requests as JSON,
 * their live feed as Server-Sent Events, replay and clear. Reads need what every status API call
 * needs (loopback Host, no foreign Origin, checked by the server); replay and clear also need the
 * per-process token that only the page (same origin) can read.
 */
export class InspectorRoutes {
  readonly token = randomBytes(24).toString('base64url')
  private readonly tokenBytes = Buffer.from(this.token)
  private readonly streams = new Set<http.ServerResponse>()

  constructor(private readonly deps: InspectorDeps, private readonly io: InspectorIo) {}

  /** true when the request was one of the inspector's. */
  async handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL, method: string): Promise<boolean> {
    const path = url.pathname
    if (method === 'GET' && (path === '/' || path === '/index.html')) {
      sendText(res, 'text/html; charset=utf-8', inspectorHtml(this.token), { 'content-security-policy': PAGE_CSP })
      return true
    }
    if (method === 'GET' && path === '/inspector.js') return sendText(res, 'text/javascript; charset=utf-8', INSPECTOR_JS), true
    if (method === 'GET' && path === '/inspector.css') return sendText(res, 'text/css; charset=utf-8', INSPECTOR_CSS), true
    if (method === 'GET' && path === '/api/token') return this.io.sendJson(res, 200, { header: TOKEN_HEADER, token: this.token }), true
    if (path === '/api/events' && method === 'GET') return this.events(req, res), true
    if (path === '/api/requests' && method === 'GET') {
      const store = this.store()
      const items = store.list().map((e) => e.summary()).filter(filterOf(url.searchParams))
      const limit = Math.min(Number(url.searchParams.get('limit') ?? store.limits.requests) || store.limits.requests, store.limits.requests)
      this.io.sendJson(res, 200, { requests: items.slice(0, limit), stored: store.size, bytes: store.bytes, limits: store.limits })
      return true
    }
    if (path === '/api/requests' && method === 'DELETE') {
      this.requireToken(req)
      this.io.sendJson(res, 200, { cleared: this.store().clear() })
      return true
    }
    const one = /^\/api\/requests\/(\d{1,15})(\/replay)?$/.exec(path)
    if (one === null) return false
    const entry = this.store().get(one[1]!)
    if (one[2] === undefined && method === 'GET') {
      if (entry === undefined) throw new PorchlightError('PL_ERR_NOT_FOUND', [`request ${one[1]!} (gone from the buffer?)`])
      this.io.sendJson(res, 200, entry.detail())
      return true
    }
    if (one[2] !== undefined && method === 'POST') {
      this.requireToken(req)
      const body = await this.io.readJson(req)
      const edits = ReplayEdits.safeParse(body ?? {})
      if (!edits.success) {
        const issue = edits.error.issues[0]
        throw new PorchlightError('PL_ERR_HTTP_BAD_REQUEST', [issue === undefined ? 'invalid body' : `${issue.path.join('.') || 'body'}: ${issue.message}`])
      }
      if (entry === undefined) throw new PorchlightError('PL_ERR_NOT_FOUND', [`request ${one[1]!} (gone from the buffer?)`])
      const replayed = await replayExchange(entry, edits.data, { ...this.deps.replay, monitor: this.deps.monitor })
      if (replayed === null) throw new PorchlightError('PL_ERR_NOT_FOUND', ['the replay was not kept (the buffer is full of larger entries)'])
      this.io.sendJson(res, 201, replayed.detail())
      return true
    }
    return false
  }

  /** Ends every live event stream (the server is closing). */
  close(): void {
    for (const res of this.streams) res.destroy()
    this.streams.clear()
  }

  private store(): CaptureStore {
    const store = this.deps.monitor.store
    if (store === null) throw new PorchlightError('PL_ERR_NOT_FOUND', ['request capture is off (inspect_capture.requests: 0)'])
    return store
  }

  /**
   * The token in its header, and nothing that says another site sent the request: any Origin
   * must be this very origin (another loopback port is another site, e.g. the dev server being
   * shared), and a browser's Sec-Fetch-Site must say same-origin.
   */
  private requireToken(req: http.IncomingMessage): void {
    const given = req.headers[TOKEN_HEADER]
    const bytes = typeof given === 'string' ? Buffer.from(given) : null
    const tokenOk = bytes !== null && bytes.length === this.tokenBytes.length && timingSafeEqual(bytes, this.tokenBytes)
    const origin = req.headers.origin
    const sameOrigin = origin === undefined || origin === `http://${req.headers.host ?? ''}`
    const site = req.headers['sec-fetch-site']
    const siteOk = site === undefined || site === 'same-origin' || site === 'none'
    if (!tokenOk || !sameOrigin || !siteOk) throw new PorchlightError('PL_ERR_ACCESS_DENIED')
  }

  private events(req: http.IncomingMessage, res: http.ServerResponse): void {
    const store = this.store()
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
    res.write('retry: 2000\n\n')
    this.streams.add(res)
    const send = (summary: ExchangeSummary | null): void => {
      if (res.writableLength > MAX_EVENT_BACKLOG_BYTES) {
        res.destroy()
        return
      }
      res.write(summary === null ? 'event: clear\ndata: {}\n\n' : `event: request\ndata: ${JSON.stringify(summary)}\n\n`)
    }
    const unsubscribe = store.subscribe(send)
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), EVENT_KEEPALIVE_MS)
    keepalive.unref()
    const done = (): void => {
      unsubscribe()
      clearInterval(keepalive)
      this.streams.delete(res)
    }
    res.on('close', done)
    req.on('close', done)
  }
}

/** `?tunnel=`, `?status=2xx|3xx|4xx|5xx|error`, `?q=` (method, path or host contains). */
function filterOf(params: URLSearchParams): (s: ExchangeSummary) => boolean {
  const tunnel = params.get('tunnel')
  const status = params.get('status')
  const q = params.get('q')?.toLowerCase() ?? null
  return (s) => {
    if (tunnel !== null && tunnel !== '' && s.tunnel !== tunnel) return false
    if (status === 'error' && s.state !== 'failed') return false
    if (status !== null && /^[1-5]xx$/.test(status) && Math.floor(s.status / 100) !== Number(status[0])) return false
    if (q !== null && q !== '' && !`${s.method} ${s.path} ${s.host}`.toLowerCase().includes(q)) return false
    return true
  }
}

function sendText(res: http.ServerResponse, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(200, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    ...extra,
  })
  res.end(body)
}
