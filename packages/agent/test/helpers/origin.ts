import { createHash } from 'node:crypto'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import type { Test } from 'tap'

export interface SeenRequest {
  method: string
  url: string
  rawHeaders: string[]
  bodySha256: string
  bodyBytes: number
}

export interface Origin {
  port: number
  url: string
  /** Requests the origin finished reading, in order. */
  seen: SeenRequest[]
  /** TCP connections accepted (keep-alive reuse and "nothing dialled" checks). */
  connections: () => number
  /** Requests whose visitor went away before the response ended. */
  aborted: () => number
}

/**
 * A local origin for tests: every route reads the whole body and records what it saw.
 *   /hello        200 "hello" (+ x-origin header)
 *   /echo         200 JSON of what it saw
 *   /chunked      three chunks 50 ms apart, chunked encoding
 *   /bytes/N      N deterministic bytes with Content-Length
 *   /truncate     headers + Content-Length 1000, 10 bytes, then the socket is destroyed
 *   /slow         never answers
 *   /no-body      204
 * Upgrade: 'Upgrade: echo' -> 101, then echoes bytes; anything else -> 426 plain response.
 */
export async function startOrigin(t: Test): Promise<Origin> {
  const seen: SeenRequest[] = []
  let connections = 0
  let aborted = 0
  const server = http.createServer((req, res) => {
    const hash = createHash('sha256')
    let bodyBytes = 0
    res.on('close', () => {
      if (!res.writableFinished) aborted++
    })
    req.on('data', (c: Buffer) => {
      hash.update(c)
      bodyBytes += c.length
    })
    req.on('end', () => {
      const record = { method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, bodySha256: hash.digest('hex'), bodyBytes }
      seen.push(record)
      const path = (req.url ?? '/').split('?')[0]!
      if (path === '/hello') {
        res.writeHead(200, { 'content-type': 'text/plain', 'x-origin': '1', 'keep-alive': 'timeout=5' })
        res.end('hello')
      } else if (path.startsWith('/echo')) {
        const body = JSON.stringify(record)
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
        res.end(body)
      } else if (path === '/chunked') {
        res.writeHead(200, { 'content-type': 'text/plain' })
        let i = 0
        const tick = (): void => {
          i++
          if (i <= 3) {
            res.write(`chunk${i};`)
            setTimeout(tick, 50)
          } else res.end()
        }
        tick()
      } else if (path.startsWith('/bytes/')) {
        const n = Number(path.slice('/bytes/'.length))
        const body = Buffer.alloc(n, 0x61)
        res.writeHead(200, { 'content-length': n })
        res.end(body)
      } else if (path === '/truncate') {
        res.writeHead(200, { 'content-length': 1000 })
        res.write(Buffer.alloc(10, 0x62))
        setTimeout(() => res.socket?.destroy(), 50)
      } else if (path === '/slow') {
        // never answers
      } else if (path === '/no-body') {
        res.writeHead(204)
        res.end()
      } else {
        res.writeHead(404)
        res.end('nope')
      }
    })
  })
  server.on('connection', () => connections++)
  server.on('upgrade', (req, socket, head) => {
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'echo') {
      socket.end('HTTP/1.1 426 Upgrade Required\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope')
      return
    }
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n')
    if (head.length > 0) socket.write(head)
    socket.pipe(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { port, url: `http://127.0.0.1:${port}`, seen, connections: () => connections, aborted: () => aborted }
}

/** A TCP server that answers every connection with `reply` bytes and closes. */
export async function startRawOrigin(t: Test, reply: string): Promise<{ port: number; connections: () => number }> {
  let connections = 0
  const server = net.createServer((socket) => {
    connections++
    socket.once('data', () => socket.end(reply))
    socket.on('error', () => undefined)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { port: (server.address() as AddressInfo).port, connections: () => connections }
}

/** A port nothing listens on (bound then closed). */
export async function closedPort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** Header value(s) by name from a raw header list. */
export function headerValues(rawHeaders: string[], name: string): string[] {
  const out: string[] = []
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === name) out.push(rawHeaders[i + 1]!)
  return out
}
