import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { z } from 'zod'
import { formatAddress, type Address } from '@porchlight/shared/config'
import { PorchlightError, codes, isPorchlightError, type ErrorCode } from '@porchlight/shared/errors'
import type { Logger } from '@porchlight/shared/log'
import { isLoopbackAddress } from '@porchlight/shared/net'
import { parseDurationMs } from './duration.js'
import { InspectorRoutes, type InspectorDeps } from './inspector/routes.js'

/**
 * The local status API and request inspector (`inspect`, default 127.0.0.1:4040): what
 * `porchlight status` and `porchlight link …` talk to, and the inspector page at `/`
 * (inspector/routes.ts). Loopback only and no credentials, so two browser-borne attacks are
 * shut explicitly: DNS rebinding (any Host but 127.0.0.1 / localhost / [::1] gets 403) and
 * cross-site requests (a foreign Origin gets 403; writes need a JSON body, which a plain HTML
 * form cannot send).
 */
export interface InspectDeps {
  status: () => unknown
  request: (op: string, args: Record<string, unknown>) => Promise<unknown>
  log: Logger
  /** The request inspector (page, captured requests, replay); absent: status API only. */
  inspector?: InspectorDeps
}

const MAX_BODY_BYTES = 16 * 1024

/** POST /api/links body. `expires` is a duration ("24h") or milliseconds. */
const CreateLinkBody = z.strictObject({
  host: z.string().min(1).max(253),
  expires: z.union([z.string().max(32), z.number().int().positive()]).optional(),
  note: z.string().max(200).optional(),
})

export const DEFAULT_LINK_EXPIRES_MS = 24 * 3_600_000

export class InspectServer {
  private readonly server: http.Server
  private bound: Address | null = null
  private readonly inspector: InspectorRoutes | null

  constructor(private readonly address: Address, private readonly deps: InspectDeps) {
    this.server = http.createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!isPorchlightError(err)) deps.log.error({ err }, 'inspect request failed')
        sendError(res, err)
      })
    })
    this.inspector = deps.inspector === undefined ? null : new InspectorRoutes(deps.inspector, { readJson: readJsonBody, sendJson })
    this.server.keepAliveTimeout = 5_000
    this.server.on('clientError', (_err, socket) => socket.destroy())
  }

  /** Binds; a non-loopback address is refused (the API has no credentials). */
  async listen(): Promise<Address> {
    if (!isLoopbackAddress(this.address.host) && this.address.host !== 'localhost') {
      throw new PorchlightError('PL_ERR_CONFIG_INSECURE', [`inspect must listen on a loopback address, not ${formatAddress(this.address)}`])
    }
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        // close() also stops the connections-check timer a failed listen leaves running (it would
        // keep the process alive after a fallback to another port).
        this.server.close(() => undefined)
        reject(new PorchlightError('PL_ERR_LISTEN', [formatAddress(this.address), 'inspect', err.code ?? err.message], { cause: err }))
      }
      this.server.once('error', onError)
      this.server.listen(this.address.port, this.address.host, () => {
        this.server.off('error', onError)
        resolve()
      })
    })
    const info = this.server.address() as AddressInfo
    this.bound = { host: info.address, port: info.port }
    return this.bound
  }

  /** The token replay and clear need (it is also in the page). */
  get token(): string | null {
    return this.inspector?.token ?? null
  }

  get boundAddress(): Address | null {
    return this.bound
  }

  async close(): Promise<void> {
    if (!this.server.listening) return
    this.inspector?.close()
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve())
      this.server.closeAllConnections()
    })
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!hostAllowed(req.headers.host) || !originAllowed(req.headers.origin)) {
      sendError(res, new PorchlightError('PL_ERR_ACCESS_DENIED'))
      return
    }
    const url = new URL(req.url ?? '/', 'http://localhost')
    const method = req.method ?? 'GET'
    if (url.pathname === '/api/status' && method === 'GET') {
      sendJson(res, 200, this.deps.status())
      return
    }
    if (url.pathname === '/api/links' && method === 'GET') {
      sendJson(res, 200, { links: await this.relay('link.list', {}) })
      return
    }
    if (url.pathname === '/api/links' && method === 'POST') {
      const body = await readJsonBody(req)
      const parsed = CreateLinkBody.safeParse(body)
      if (!parsed.success) throw new PorchlightError('PL_ERR_HTTP_BAD_REQUEST', [parsed.error.issues[0]?.message ?? 'invalid body'])
      const { host, expires, note } = parsed.data
      const expiresMs = expires === undefined ? DEFAULT_LINK_EXPIRES_MS : typeof expires === 'number' ? expires : parseDurationMs(expires)
      sendJson(res, 201, await this.relay('link.create', { host, expires_ms: expiresMs, note: note ?? '' }))
      return
    }
    const revoke = /^\/api\/links\/([A-Za-z0-9_-]{1,128})$/.exec(url.pathname)
    if (revoke !== null && method === 'DELETE') {
      sendJson(res, 200, await this.relay('link.revoke', { id: revoke[1]! }))
      return
    }
    if (this.inspector !== null && (await this.inspector.handle(req, res, url, method))) return
    sendError(res, new PorchlightError('PL_ERR_NOT_FOUND', [`${method} ${url.pathname}`]))
  }

  private async relay(op: string, args: Record<string, unknown>): Promise<unknown> {
    return this.deps.request(op, args)
  }
}

/** 127.0.0.1, localhost or [::1], with any port. Everything else is a rebinding attempt. */
export function hostAllowed(host: string | undefined): boolean {
  if (host === undefined) return false
  const match = /^(127\.0\.0\.1|localhost|\[::1\])(:\d{1,5})?$/i.exec(host.trim())
  return match !== null
}

/** No Origin (curl, our CLI) or a loopback origin; a web page elsewhere may not drive the API. */
export function originAllowed(origin: string | undefined): boolean {
  if (origin === undefined) return true
  try {
    const url = new URL(origin)
    return (url.protocol === 'http:' || url.protocol === 'https:') && hostAllowed(url.host)
  } catch {
    return false
  }
}

async function readJsonBody(req: http.IncomingMessage): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
  if (type !== 'application/json') throw new PorchlightError('PL_ERR_HTTP_BAD_REQUEST', ['expected Content-Type: application/json'])
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY_BYTES) throw new PorchlightError('PL_ERR_HTTP_BAD_REQUEST', ['body too large'])
    chunks.push(chunk)
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown
  } catch {
    throw new PorchlightError('PL_ERR_HTTP_BAD_REQUEST', ['body is not JSON'])
  }
}

function sendJson(res: http.ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value ?? null)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
  res.end(body)
}

/** HTTP status for an error from us or from the relay (codes cross the wire, not classes). */
export function statusForError(err: unknown): number {
  if (!isPorchlightError(err)) return 500
  if (err.code === 'PL_ERR_LINK_LOST' || err.code === 'PL_ERR_LINK_TIMEOUT' || err.code === 'PL_ERR_MUX_CLOSED') return 503
  if (err.code === 'PL_ERR_PROTO_BAD_MESSAGE' || err.code === 'PL_ERR_USAGE') return 400
  const spec = codes[err.code as ErrorCode] as { status?: number }
  return spec.status ?? 502
}

function sendError(res: http.ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const code = isPorchlightError(err) ? err.code : 'PL_ERR_INTERNAL'
  const message = isPorchlightError(err) ? err.message : 'internal error'
  sendJson(res, statusForError(err), { error: { code, message } })
}

