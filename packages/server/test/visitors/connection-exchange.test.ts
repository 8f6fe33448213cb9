// The relay's connection-stream exchange in-process, with a fake agent: a TCP server standing in
// for the mux stream's far end, which reads the `http-conn` head, answers as told and pipes to a
// real local server. No relay process, no link: what sendOverConnection writes, parses and
// answers, stage by stage.
import { createServer as createHttpServer, request, Agent, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect, createServer, type Server, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import t from 'tap'
import type { ErrorCode } from '@porchlight/shared/errors'
import { readHead, writeHead } from '@porchlight/shared/protocol'
import type { HttpRoute, SessionRef } from '../../src/agents/registry.js'
import { sendOverConnection } from '../../src/visitors/connection-exchange.js'

type AgentMode = 'pipe' | 'unreachable' | 'silent'

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as { port: number }).port
}

/** A body that fills the visitor's socket many times over. */
const BIG = Buffer.alloc(8 * 1024 * 1024, 'b')
/** The local server: echoes what it was sent (method, url, host, framing, body). */
const originRequests: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string; socket: Socket }> = []
const origin = createHttpServer((req, res) => {
  let body = ''
  req.setEncoding('latin1')
  req.on('data', (c: string) => { body += c })
  req.on('end', () => {
    originRequests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, socket: req.socket })
    if (req.url?.endsWith('/big')) return void res.end(BIG)
    res.end(`${req.method} ${req.url} ${body.length}`)
  })
})
const originPort = await listen(origin)

/** The fake agent: one TCP connection per stream the "session" opens. */
const heads: unknown[] = []
let mode: AgentMode = 'pipe'
const fakeAgent = createServer((stream) => {
  stream.on('error', () => undefined)
  void readHead(stream, 5000).then((head) => {
    heads.push(head)
    if (mode === 'silent') return
    if (mode === 'unreachable') {
      writeHead(stream, { t: 'error', code: 'PL_ERR_HTTP_ORIGIN_UNREACHABLE', message: 'local server unreachable (ECONNREFUSED)' })
      stream.end()
      return
    }
    // Nothing back on success: the origin's bytes are the answer.
    const local = connect(originPort, '127.0.0.1', () => stream.pipe(local).pipe(stream))
    local.on('error', () => stream.destroy())
  }, () => stream.destroy())
})
const agentPort = await listen(fakeAgent)

let closed = false
let opened = 0
let leavingFns = new Set<() => void>()
/** Streams the fake session opened that are still open. */
const openStreams = new Set<Duplex>()
const session: SessionRef = {
  agent: 'laptop',
  instance: 'i-1',
  id: 's-1',
  get isClosed() { return closed },
  openStream(): Duplex {
    opened++
    const stream = connect(agentPort, '127.0.0.1')
    openStreams.add(stream)
    stream.once('close', () => openStreams.delete(stream))
    return stream
  },
  whenLeaving(fn) {
    leavingFns.add(fn)
    return () => { leavingFns.delete(fn) }
  },
}
/** The agent sends GoAway. */
function agentLeaves(): void {
  const fns = [...leavingFns]
  leavingFns = new Set()
  for (const fn of fns) fn()
}
const route: HttpRoute & { origin: { host: string; path: string } } = {
  host: 'site.example.com', agent: 'laptop', instance: 'i-1', tunnelId: 'web', access: null, session, origin: { host: 'myapp.test', path: '/base' },
}

/** The visitor-side listener: every request goes through sendOverConnection. */
const failures: ErrorCode[] = []
const visitors = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined
  sendOverConnection({
    req, res, route,
    headers: [['Host', 'site.example.com'], ['X-Forwarded-For', '203.0.113.9'], ...(req.headers['content-length'] ? [['Content-Length', req.headers['content-length']] as [string, string]] : [])],
    url: req.url ?? '/', hasBody, originTimeoutMs: 800, stallTimeoutMs: 5000, maxBodyBytes: 1024,
    onBytesIn: () => undefined, onBytesOut: () => undefined, onStall: () => undefined,
    onBodyTooLarge: () => { res.statusCode = 413; res.end('too large') },
    onFailure: (code) => { failures.push(code); res.statusCode = 599; res.end(code) },
    track: () => undefined,
  })
})
const visitorPort = await listen(visitors)
t.teardown(() => { origin.close(); fakeAgent.close(); visitors.close(); origin.closeAllConnections(); visitors.closeAllConnections() })

function ask(agent: Agent, path: string, opts: { method?: string; body?: string; chunked?: boolean } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: 'site.example.com' }
    if (opts.body !== undefined && opts.chunked !== true) headers['content-length'] = String(Buffer.byteLength(opts.body))
    const req = request({ port: visitorPort, host: '127.0.0.1', path, method: opts.method ?? 'GET', agent, headers }, (res) => {
      let body = ''
      res.setEncoding('latin1')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    // write() before end(): Node cannot know the length and sends the body chunked.
    if (opts.chunked === true && opts.body !== undefined) { req.write(opts.body); req.end() }
    else if (opts.body !== undefined) req.end(opts.body)
    else req.end()
  })
}

t.beforeEach(() => {
  mode = 'pipe'
  closed = false
  failures.length = 0
  originRequests.length = 0
  heads.length = 0
  opened = 0
})

t.test('send: Host and path prefix are the tunnel\'s; the head names the tunnel; no Expect reaches the origin', async (t) => {
  const visitor = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => visitor.destroy())
  t.same(await ask(visitor, '/page?q=1'), { status: 200, body: 'GET /base/page?q=1 0' })
  t.same(heads, [{ t: 'http-conn', tunnel: 'web', host: 'site.example.com' }])
  t.equal(originRequests[0]!.headers.host, 'myapp.test')
  t.equal(originRequests[0]!.headers['x-forwarded-for'], '203.0.113.9')
  t.equal(originRequests[0]!.headers['content-length'], undefined, 'a bodyless GET goes without framing')
})

t.test('one stream per visitor connection: requests of one connection share it, two connections do not', async (t) => {
  const a = new Agent({ keepAlive: true, maxSockets: 1 })
  const b = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => { a.destroy(); b.destroy() })
  for (let i = 0; i < 3; i++) t.equal((await ask(a, `/a${i}`)).status, 200)
  t.equal(opened, 1, 'three requests on one visitor connection: one stream')
  for (let i = 0; i < 2; i++) t.equal((await ask(b, `/b${i}`)).status, 200)
  t.equal(opened, 2, 'a second visitor connection: a second stream')
  const originSockets = new Set(originRequests.map((r) => r.socket))
  t.equal(originSockets.size, 2, 'and a second origin connection')
})

t.test('bodies: Content-Length kept, chunked stays chunked, a bodyless POST says Content-Length: 0', async (t) => {
  const visitor = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => visitor.destroy())
  t.same(await ask(visitor, '/upload', { method: 'POST', body: 'hello' }), { status: 200, body: 'POST /base/upload 5' })
  t.equal(originRequests[0]!.headers['content-length'], '5')
  t.same(await ask(visitor, '/chunked', { method: 'POST', body: 'abcdef', chunked: true }), { status: 200, body: 'POST /base/chunked 6' })
  t.equal(originRequests[1]!.headers['transfer-encoding'], 'chunked')
  t.same(await ask(visitor, '/empty', { method: 'POST' }), { status: 200, body: 'POST /base/empty 0' })
  t.equal(originRequests[2]!.headers['content-length'], '0')
})

t.test('open: an unreachable origin, a silent agent and a closed session each end with their code', async (t) => {
  const visitor = new Agent({ keepAlive: false })
  mode = 'unreachable'
  t.same(await ask(visitor, '/x'), { status: 599, body: 'PL_ERR_HTTP_ORIGIN_UNREACHABLE' })
  mode = 'silent'
  const started = Date.now()
  t.same(await ask(visitor, '/y'), { status: 599, body: 'PL_ERR_HTTP_ORIGIN_TIMEOUT' })
  const waited = Date.now() - started
  t.ok(waited >= 700 && waited < 5000, `timed out after ${waited} ms (origin_timeout_ms 800)`)
  closed = true
  t.same(await ask(visitor, '/z'), { status: 599, body: 'PL_ERR_HTTP_TUNNEL_OFFLINE' })
  t.same(failures, ['PL_ERR_HTTP_ORIGIN_UNREACHABLE', 'PL_ERR_HTTP_ORIGIN_TIMEOUT', 'PL_ERR_HTTP_TUNNEL_OFFLINE'])
  t.equal(originRequests.length, 0, 'the origin saw none of them')
})

t.test('a stopping agent: its idle stream closes at once, and no stream is kept after a response', async (t) => {
  const visitor = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => visitor.destroy())
  t.equal((await ask(visitor, '/before')).status, 200)
  t.equal(openStreams.size, 1, 'the idle keep-alive stream stays open')
  agentLeaves()
  const started = Date.now()
  while (openStreams.size > 0 && Date.now() - started < 2000) await new Promise((r) => setTimeout(r, 10))
  t.equal(openStreams.size, 0, `closed ${Date.now() - started} ms after the GoAway`)
  t.equal((await ask(visitor, '/after')).status, 200, 'a later request opens a new stream')
  while (openStreams.size > 0 && Date.now() - started < 2000) await new Promise((r) => setTimeout(r, 10))
  t.equal(openStreams.size, 0, 'which is not kept once answered')
})

t.test('a visitor connection that closes drops its session listener (no growth over months)', async (t) => {
  const before = leavingFns.size
  for (let i = 0; i < 5; i++) {
    const visitor = new Agent({ keepAlive: true, maxSockets: 1 })
    t.equal((await ask(visitor, `/c${i}`)).status, 200)
    visitor.destroy()
  }
  const started = Date.now()
  while (leavingFns.size > before && Date.now() - started < 2000) await new Promise((r) => setTimeout(r, 10))
  t.equal(leavingFns.size, before, 'every listener went with its visitor connection')
})

t.test('an idle stream closes after 4 s (it counts against max_streams_per_agent); the visitor connection stays', async (t) => {
  const visitor = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => visitor.destroy())
  t.equal((await ask(visitor, '/one')).status, 200)
  const started = Date.now()
  while (openStreams.size > 0 && Date.now() - started < 8000) await new Promise((r) => setTimeout(r, 50))
  const ms = Date.now() - started
  t.equal(openStreams.size, 0, `closed after ${ms} ms idle`)
  t.ok(ms >= 3500 && ms < 8000, 'about 4 s')
  t.same(await ask(visitor, '/two'), { status: 200, body: 'GET /base/two 0' }, 'the next request on the same visitor connection opens a new one')
  t.equal(opened, 2)
})

t.test('backpressure: a response read slowly arrives whole, and the next request on that connection is served', async (t) => {
  const visitor = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => visitor.destroy())
  const bytes = await new Promise<number>((resolve, reject) => {
    const req = request({ port: visitorPort, host: '127.0.0.1', path: '/big', agent: visitor, headers: { host: 'site.example.com' } }, (res) => {
      let n = 0
      // Reads in bursts with pauses: the visitor's socket fills, the stream is paused many times.
      res.on('data', (c: Buffer) => {
        n += c.length
        res.pause()
        setTimeout(() => res.resume(), 1)
      })
      res.on('end', () => resolve(n))
    })
    req.on('error', reject)
    req.end()
  })
  t.equal(bytes, BIG.length, 'all 8 MiB')
  const started = Date.now()
  t.same(await ask(visitor, '/after-big'), { status: 200, body: 'GET /base/after-big 0' }, 'the stream paused by the last response flows again')
  t.ok(Date.now() - started < 700, `answered in ${Date.now() - started} ms, not at the 800 ms origin timeout`)
  t.equal(opened, 1, 'over the same stream')
})
