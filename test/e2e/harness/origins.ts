import { createHash } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Scope } from './scope.js'
import { WebSocketServer } from 'ws'
import { patternStream } from './pattern.js'

export { startNginx, nginxMissingReason, type NginxVhost, type NginxOrigin } from './nginx.js'

/** What the origin saw of one request; the echo route returns the same fields as JSON. */
export interface OriginRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
  rawHeaders: string[]
  bodyBytes: number
  bodySha256: string
}

export type OriginHandler = (req: IncomingMessage, res: ServerResponse) => void

export interface HttpOrigin {
  port: number
  /** http://127.0.0.1:PORT, what an agent tunnel's `to:` points at. */
  url: string
  /** Requests and upgrades that reached the origin at all (counted on arrival, before the body). */
  readonly requestCount: number
  /** Completed requests with their body hash, in arrival order of their ends. */
  readonly requests: OriginRequest[]
  /** WebSocket upgrades accepted, with the request headers the origin saw. */
  readonly upgrades: IncomingHttpHeaders[]
  close(): Promise<void>
}

/** Interval between Server-Sent Events on /sse. */
export const SSE_INTERVAL_MS = 200

/**
 * A node http origin on 127.0.0.1:0. Routes (pathname): /bytes/N streams N pattern bytes with a
 * Content-Length; /chunked/N the same without one; /upload hashes the body; /sse?count=N sends N
 * events SSE_INTERVAL_MS apart; /slow never answers; /status/N answers N; /ws* is a WebSocket echo;
 * anything else echoes method, url, headers and the body's sha256 as JSON. `handlers` replace
 * routes by exact pathname.
 */
export async function startHttpOrigin(t: Scope, handlers: Record<string, OriginHandler> = {}): Promise<HttpOrigin> {
  let requestCount = 0
  const requests: OriginRequest[] = []
  const upgrades: IncomingHttpHeaders[] = []
  const timers = new Set<NodeJS.Timeout>()
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false })
  wss.on('connection', ws => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
  })

  const server = createServer((req, res) => {
    requestCount++
    const path = new URL(req.url ?? '/', 'http://origin').pathname
    const custom = handlers[path]
    if (custom) return custom(req, res)
    route(req, res, path, requests, timers)
  })
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    requestCount++
    if (!(req.url ?? '').startsWith('/ws')) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
      return
    }
    upgrades.push(req.headers)
    wss.handleUpgrade(req, socket, head, ws => wss.emit('connection', ws, req))
  })
  // Keep-alive sockets outlive a test's last request; close() must not wait for them.
  server.keepAliveTimeout = 5000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('origin did not bind')
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    for (const timer of timers) clearInterval(timer)
    for (const ws of wss.clients) ws.terminate()
    wss.close()
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => resolve()))
  }
  t.teardown(close)
  return {
    port: address.port,
    url: `http://127.0.0.1:${address.port}`,
    get requestCount() { return requestCount },
    requests,
    upgrades,
    close,
  }
}

function route(req: IncomingMessage, res: ServerResponse, path: string, requests: OriginRequest[], timers: Set<NodeJS.Timeout>): void {
  const bytes = /^\/(bytes|chunked)\/(\d+)$/.exec(path)
  if (bytes && bytes[2] !== undefined) {
    const total = Number(bytes[2])
    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream' }
    if (bytes[1] === 'bytes') headers['content-length'] = total
    res.writeHead(200, headers)
    if (req.method === 'HEAD') { res.end(); return }
    const body = patternStream(total)
    body.pipe(res)
    // A visitor that goes away mid-download must not leave the pattern stream running.
    res.on('close', () => body.destroy())
    return
  }
  const status = /^\/status\/(\d{3})$/.exec(path)
  if (status && status[1] !== undefined) {
    const code = Number(status[1])
    req.resume()
    if (code === 204 || code === 304) {
      res.writeHead(code, code === 304 ? { etag: '"v1"' } : {})
      res.end()
      return
    }
    res.writeHead(code, { 'content-type': 'text/plain' })
    res.end(`status ${code}\n`)
    return
  }
  if (path === '/slow') {
    req.resume()
    return // never answers; close() destroys the socket
  }
  if (path === '/sse') {
    req.resume()
    const count = Number(new URL(req.url ?? '/', 'http://origin').searchParams.get('count') ?? 5)
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    res.flushHeaders()
    let sent = 0
    const timer = setInterval(() => {
      sent++
      res.write(`id: ${sent}\ndata: event ${sent}\n\n`)
      if (sent >= count) { clearInterval(timer); timers.delete(timer); res.end() }
    }, SSE_INTERVAL_MS)
    timers.add(timer)
    res.on('close', () => { clearInterval(timer); timers.delete(timer) })
    return
  }
  // Echo and /upload both hash the whole body; they differ only in what they send back.
  const hash = createHash('sha256')
  let bodyBytes = 0
  req.on('data', (chunk: Buffer) => { hash.update(chunk); bodyBytes += chunk.length })
  req.on('end', () => {
    const seen: OriginRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      bodyBytes,
      bodySha256: hash.digest('hex'),
    }
    requests.push(seen)
    const payload = path === '/upload' ? { bytes: bodyBytes, sha256: seen.bodySha256 } : seen
    const json = JSON.stringify(payload)
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) })
    res.end(req.method === 'HEAD' ? undefined : json)
  })
}
