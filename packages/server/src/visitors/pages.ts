import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { codes, type ErrorCode } from '@porchlight/shared/errors'

/**
 * Fixed error pages. They name no internal address, path, version or other tunnel: the text
 * comes from the error table only. Browsers (Accept: text/html) get HTML, everyone else text.
 */
const TITLES: Record<number, string> = {
  400: 'Bad request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not found', 405: 'Method not allowed',
  408: 'Request timeout',
  413: 'Content too large', 429: 'Too many requests', 431: 'Request header fields too large', 500: 'Internal error',
  502: 'Bad gateway', 503: 'Service unavailable', 504: 'Gateway timeout',
}

export interface PageOptions {
  status?: number
  /** Extra detail; must come from our own table, never from a peer. */
  detail?: string
  headers?: Record<string, string>
}

export function renderPage(code: ErrorCode, acceptHeader: string | undefined, opts: PageOptions = {}): { status: number; type: string; body: string } {
  const spec = codes[code] as { msg: string; status?: number }
  const status = opts.status ?? spec.status ?? 500
  const title = TITLES[status] ?? 'Error'
  const message = opts.detail ?? spec.msg.replace(/\s*%s\s*/g, ' ').trim()
  if (acceptHeader?.includes('text/html')) {
    const body = `<!doctype html><html><head><meta charset="utf-8"><title>${status} ${title}</title>` +
      '<style>body{font:16px system-ui,sans-serif;margin:4em auto;max-width:36em;color:#222}code{color:#666}</style></head>' +
      `<body><h1>${status} ${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p><p><code>${code}</code> · porchlight</p></body></html>\n`
    return { status, type: 'text/html; charset=utf-8', body }
  }
  return { status, type: 'text/plain; charset=utf-8', body: `${status} ${title}: ${message} (${code})\n` }
}

/** Answers a request with an error page; safe to call when headers were already sent. */
export function sendPage(res: ServerResponse, code: ErrorCode, acceptHeader: string | undefined, opts: PageOptions = {}): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const page = renderPage(code, acceptHeader, opts)
  res.writeHead(page.status, {
    'content-type': page.type,
    'content-length': Buffer.byteLength(page.body),
    'cache-control': 'no-store',
    'x-porchlight-error': code,
    ...opts.headers,
  })
  res.end(page.body)
}

/** How long a visitor may keep its half of a connection open after a raw error page. */
export const RAW_PAGE_LINGER_MS = 2_000

/** Error page on a raw socket (upgrade path, client errors); always closes the connection. */
export function writeRawPage(socket: Socket, code: ErrorCode, acceptHeader: string | undefined, opts: PageOptions = {}): void {
  if (socket.destroyed) return
  const page = renderPage(code, acceptHeader, opts)
  const extra = Object.entries(opts.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join('')
  socket.end(
    `HTTP/1.1 ${page.status} ${TITLES[page.status] ?? 'Error'}\r\n` +
    `content-type: ${page.type}\r\ncontent-length: ${Buffer.byteLength(page.body)}\r\n` +
    `x-porchlight-error: ${code}\r\n${extra}connection: close\r\n\r\n${page.body}`,
  )
  // Node's HTTP servers allow half-open connections, so a visitor that never closes its side would
  // hold this socket for ever. What it still sends is read and dropped (unread bytes would turn the
  // close into a RST that can discard the page), and the socket goes RAW_PAGE_LINGER_MS later.
  socket.resume()
  const linger = setTimeout(() => socket.destroy(), RAW_PAGE_LINGER_MS)
  linger.unref()
  socket.once('close', () => clearTimeout(linger))
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}
