import http from 'node:http'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { RAW_PAGE_LINGER_MS, renderPage, writeRawPage } from '../../src/visitors/pages.js'

t.test('error pages: HTML for browsers, text otherwise, never internals (SECURITY B16)', async (t) => {
  const html = renderPage('PL_ERR_HTTP_TUNNEL_OFFLINE', 'text/html,application/xhtml+xml')
  t.equal(html.status, 503)
  t.match(html.type, /text\/html/)
  t.match(html.body, /tunnel offline/)
  const text = renderPage('PL_ERR_HTTP_UNKNOWN_HOST', '*/*')
  t.equal(text.status, 404)
  t.equal(text.body, '404 Not found: no tunnel for this host (PL_ERR_HTTP_UNKNOWN_HOST)\n')
  for (const code of ['PL_ERR_HTTP_ORIGIN_UNREACHABLE', 'PL_ERR_HTTP_ORIGIN_TIMEOUT', 'PL_ERR_HTTP_BAD_REQUEST'] as const) {
    const page = renderPage(code, undefined)
    t.notMatch(page.body, /127\.0\.0\.1|\/home|\/work|at .*\.js|node:/, `${code} leaks nothing`)
  }
  t.equal(renderPage('PL_ERR_HTTP_ORIGIN_TIMEOUT', undefined).status, 504)
  t.equal(renderPage('PL_ERR_HTTP_ORIGIN_UNREACHABLE', undefined).status, 502)
})

t.test('a raw error page is closed RAW_PAGE_LINGER_MS after it was sent, even if the visitor keeps its side open', async (t) => {
  const closed: number[] = []
  const server = http.createServer()
  server.on('upgrade', (req: http.IncomingMessage, socket: Socket) => {
    socket.once('close', () => closed.push(Date.now()))
    writeRawPage(socket, 'PL_ERR_CLUSTER_REDIS', req.headers.accept, { detail: 'stale', headers: { 'retry-after': '5' } })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => server.close())
  // A visitor that half-closes nothing and keeps sending after the head.
  const visitor = connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port, allowHalfOpen: true })
  let got = ''
  visitor.setEncoding('utf8')
  visitor.on('data', (d: string) => { got += d })
  const ended = new Promise<number>((resolve) => visitor.once('end', () => resolve(Date.now())))
  const sentAt = Date.now()
  visitor.write('GET /ws HTTP/1.1\r\nhost: a.test\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\nmore bytes after the head')
  await ended
  t.match(got, /^HTTP\/1\.1 503 Service unavailable\r\n[^]*x-porchlight-error: PL_ERR_CLUSTER_REDIS\r\n[^]*\r\n\r\n503 Service unavailable: stale \(PL_ERR_CLUSTER_REDIS\)\n$/, 'the whole page arrived, then FIN')
  // Polled for at most 10 s past the linger (Infinity: never closed).
  const gone = await new Promise<number>((resolve) => {
    const poll = setInterval(() => {
      if (closed.length > 0 || Date.now() - sentAt > RAW_PAGE_LINGER_MS + 10_000) {
        clearInterval(poll)
        resolve(closed[0] ?? Infinity)
      }
    }, 20)
  })
  const ms = gone - sentAt
  visitor.destroy()
  t.ok(ms >= RAW_PAGE_LINGER_MS - 100 && ms <= RAW_PAGE_LINGER_MS + 8_000, `the relay's socket closed ${ms} ms after the page though the visitor never closed`)
})
