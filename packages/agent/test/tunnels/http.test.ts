import t, { type Test } from 'tap'
import type { HttpRequestHead } from '@porchlight/shared/protocol'
import { buildOriginAgents, destroyOriginAgents, handleHttpStream, joinPath, originErrorCode, type HttpTunnelTarget } from '../../src/tunnels/http.js'
import { memoryLogger } from '../helpers/log.js'
import { closedPort, headerValues, startOrigin, startRawOrigin } from '../helpers/origin.js'
import { patternBytes, readBody, readReply, sha256, streamPair } from '../helpers/streams.js'

function head(overrides: Partial<HttpRequestHead> = {}): HttpRequestHead {
  return {
    t: 'http',
    tunnel: 'blog',
    host: 'blog.localhost',
    method: 'GET',
    url: '/hello',
    headers: [['User-Agent', 'test'], ['X-Forwarded-For', '203.0.113.9']],
    upgrade: false,
    ...overrides,
  }
}

function setup(t: Test, to: string, hostHeader: string | null = null) {
  const { log, lines } = memoryLogger()
  const agents = buildOriginAgents()
  t.teardown(() => destroyOriginAgents(agents))
  const tunnel: HttpTunnelTarget = { id: 'blog', to, host_header: hostHeader }
  const serve = (h: HttpRequestHead, body?: Buffer | Buffer[] | null) => {
    const [relay, agent] = streamPair()
    relay.on('error', () => undefined)
    handleHttpStream(agent, h, tunnel, { log, agents })
    if (body !== null) {
      for (const chunk of Array.isArray(body) ? body : body === undefined ? [] : [body]) relay.write(chunk)
      relay.end()
    }
    return relay
  }
  return { serve, lines, agents }
}

t.test('GET: reply head, body, FIN; Host from host_header; hop-by-hop and Connection-named headers dropped', async (t) => {
  const origin = await startOrigin(t)
  const { serve } = setup(t, origin.url, 'blog.local')
  const relay = serve(head({
    url: '/echo?x=1',
    headers: [
      ['User-Agent', 'test'], ['X-Forwarded-For', '203.0.113.9'], ['Connection', 'X-Secret'], ['X-Secret', 'no'],
      ['Keep-Alive', 'timeout=1'], ['TE', 'trailers'], ['Proxy-Authorization', 'Basic x'], ['Host', 'evil.example'], ['Cookie', 'a=1'],
    ],
  }))
  const reply = await readReply(relay)
  t.equal(reply.t, 'response')
  if (reply.t !== 'response') return
  t.equal(reply.status, 200)
  t.equal(reply.status_message, 'OK')
  const body = await readBody(relay)
  t.equal(body.ended, true)
  const seen = JSON.parse(body.bytes.toString()) as { url: string; rawHeaders: string[]; method: string }
  t.equal(seen.method, 'GET')
  t.equal(seen.url, '/echo?x=1')
  t.same(headerValues(seen.rawHeaders, 'host'), ['blog.local'])
  t.same(headerValues(seen.rawHeaders, 'x-forwarded-for'), ['203.0.113.9'])
  t.same(headerValues(seen.rawHeaders, 'cookie'), ['a=1'])
  for (const dropped of ['x-secret', 'keep-alive', 'te', 'proxy-authorization', 'transfer-encoding', 'content-length']) {
    t.same(headerValues(seen.rawHeaders, dropped), [], `${dropped} not sent`)
  }
})

t.test('Host defaults to the origin host:port; response hop-by-hop headers are dropped', async (t) => {
  const origin = await startOrigin(t)
  const { serve } = setup(t, origin.url)
  const relay = serve(head({ url: '/hello' }))
  const reply = await readReply(relay)
  if (reply.t !== 'response') throw new Error('expected a response')
  const names = reply.headers.map(([n]) => n.toLowerCase())
  t.ok(names.includes('x-origin'))
  t.notOk(names.includes('keep-alive'))
  t.notOk(names.includes('connection'))
  t.equal((await readBody(relay)).bytes.toString(), 'hello')
  // The pool hands a finished connection out again after one event-loop turn (a server that
  // closes right after its response must be seen first).
  await new Promise((resolve) => setTimeout(resolve, 5))
  const again = serve(head({ url: '/echo' }))
  await readReply(again)
  const seen = JSON.parse((await readBody(again)).bytes.toString()) as { rawHeaders: string[] }
  t.same(headerValues(seen.rawHeaders, 'host'), [`127.0.0.1:${origin.port}`])
  t.equal(origin.connections(), 1, 'the second request reused the keep-alive origin connection')
})

t.test('POST with Content-Length: the 1 MiB body arrives intact', async (t) => {
  const origin = await startOrigin(t)
  const { serve } = setup(t, origin.url)
  const body = patternBytes(1024 * 1024)
  const chunks = [body.subarray(0, 1000), body.subarray(1000, 300_000), body.subarray(300_000)]
  const relay = serve(head({ method: 'POST', url: '/echo', headers: [['Content-Length', String(body.length)]] }), chunks)
  const reply = await readReply(relay)
  t.equal(reply.t === 'response' && reply.status, 200)
  const seen = JSON.parse((await readBody(relay)).bytes.toString()) as { bodySha256: string; bodyBytes: number; rawHeaders: string[] }
  t.equal(seen.bodyBytes, body.length)
  t.equal(seen.bodySha256, sha256(body))
  t.same(headerValues(seen.rawHeaders, 'content-length'), [String(body.length)])
})

t.test('POST without Content-Length (chunked upload): sent chunked, body intact', async (t) => {
  const origin = await startOrigin(t)
  const { serve } = setup(t, origin.url)
  const parts = [Buffer.from('first;'), Buffer.from('second;'), Buffer.from('third')]
  const relay = serve(head({ method: 'POST', url: '/echo', headers: [] }), null)
  // Parts arrive over time, so the length is unknown when the request goes out.
  for (const part of parts) {
    relay.write(part)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  relay.end()
  await readReply(relay)
  const seen = JSON.parse((await readBody(relay)).bytes.toString()) as { bodySha256: string; rawHeaders: string[] }
  t.equal(seen.bodySha256, sha256('first;second;third'))
  t.same(headerValues(seen.rawHeaders, 'transfer-encoding'), ['chunked'])
})

t.test('bodyless requests carry no framing headers (GET) or Content-Length: 0 (POST)', async (t) => {
  const origin = await startOrigin(t)
  const { serve } = setup(t, origin.url)
  const get = serve(head({ url: '/echo' }))
  await readReply(get)
  const seenGet = JSON.parse((await readBody(get)).bytes.toString()) as { rawHeaders: string[] }
  t.same(headerValues(seenGet.rawHeaders, 'transfer-encoding'), [])
  t.same(headerValues(seenGet.rawHeaders, 'content-length'), [])
  const post = serve(head({ method: 'POST', url: '/echo', headers: [] }))
  await readReply(post)
  const seenPost = JSON.parse((await readBody(post)).bytes.toString()) as { rawHeaders: string[]; bodyBytes: number }
  t.same(headerValues(seenPost.rawHeaders, 'content-length'), ['0'])
  t.same(headerValues(seenPost.rawHeaders, 'transfer-encoding'), [])
  t.equal(seenPost.bodyBytes, 0)
})

t.test('chunked response streams through and ends with FIN', async (t) => {
  const origin = await startOrigin(t)
  const { serve } = setup(t, origin.url)
  const relay = serve(head({ url: '/chunked' }))
  const reply = await readReply(relay)
  if (reply.t !== 'response') throw new Error('expected a response')
  t.notOk(reply.headers.some(([n]) => n.toLowerCase() === 'transfer-encoding'), 'the relay frames the body itself')
  const body = await readBody(relay)
  t.equal(body.bytes.toString(), 'chunk1;chunk2;chunk3;')
  t.equal(body.ended, true)
})

t.test('a response faster than the relay reads pauses the origin: the stream holds a bounded backlog, then every byte arrives', async (t) => {
  const origin = await startOrigin(t)
  const { log } = memoryLogger()
  const agents = buildOriginAgents()
  t.teardown(() => destroyOriginAgents(agents))
  const [relay, agent] = streamPair()
  handleHttpStream(agent, head({ url: '/bytes/8388608' }), { id: 'blog', to: origin.url, host_header: null }, { log, agents })
  relay.end()
  const reply = await readReply(relay)
  if (reply.t !== 'response') throw new Error('expected a response')
  // The relay side reads nothing for a while: undici must be paused, not buffer 8 MiB here.
  relay.pause()
  let peak = 0
  for (let i = 0; i < 20; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10))
    peak = Math.max(peak, agent.writableLength)
  }
  t.ok(peak < 1024 * 1024, `the agent side held at most ${peak} bytes while the relay read nothing`)
  relay.resume()
  const body = await readBody(relay)
  t.equal(body.ended, true)
  t.equal(body.bytes.length, 8388608)
  t.equal(sha256(body.bytes), sha256(Buffer.alloc(8388608, 0x61)))
})

t.test('204 and HEAD end without a body', async (t) => {
  const origin = await startOrigin(t)
  const { serve } = setup(t, origin.url)
  const relay = serve(head({ url: '/no-body' }))
  const reply = await readReply(relay)
  t.equal(reply.t === 'response' && reply.status, 204)
  const body = await readBody(relay)
  t.equal(body.bytes.length, 0)
  t.equal(body.ended, true)
  const headReq = serve(head({ method: 'HEAD', url: '/bytes/500' }))
  const headReply = await readReply(headReq)
  if (headReply.t !== 'response') throw new Error('expected a response')
  t.same(headReply.headers.find(([n]) => n.toLowerCase() === 'content-length'), ['content-length', '500'])
  t.equal((await readBody(headReq)).bytes.length, 0)
})

t.test('upgrade: origin 101 -> response head 101, then raw bytes echo both ways', async (t) => {
  const origin = await startOrigin(t)
  const { serve } = setup(t, origin.url)
  const relay = serve(head({ url: '/ws', upgrade: true, headers: [['Upgrade', 'echo'], ['Connection', 'Upgrade']] }), null)
  const reply = await readReply(relay)
  if (reply.t !== 'response') throw new Error('expected a response')
  t.equal(reply.status, 101)
  t.same(reply.headers.find(([n]) => n.toLowerCase() === 'upgrade'), ['Upgrade', 'echo'])
  const got: Buffer[] = []
  const echoed = new Promise<void>((resolve) => {
    relay.on('data', (c: Buffer) => {
      got.push(c)
      if (Buffer.concat(got).toString() === 'ping-pong') resolve()
    })
  })
  relay.write('ping-')
  relay.write('pong')
  await echoed
  t.equal(Buffer.concat(got).toString(), 'ping-pong')
  const seen = origin.seen
  t.equal(seen.length, 0, 'upgrade requests are not ordinary requests')
  relay.end()
  await new Promise<void>((resolve) => relay.once('close', () => resolve()))
  t.pass('closing the visitor side closes the upgraded connection')
})

t.test('upgrade refused by the origin (426): a normal response, no raw piping', async (t) => {
  const origin = await startOrigin(t)
  const { serve } = setup(t, origin.url)
  const relay = serve(head({ url: '/ws', upgrade: true, headers: [['Upgrade', 'websocket'], ['Connection', 'Upgrade']] }), null)
  const reply = await readReply(relay)
  t.equal(reply.t === 'response' && reply.status, 426)
  const body = await readBody(relay)
  t.equal(body.bytes.toString(), 'nope')
  t.equal(body.ended, true)
})

t.test('origin refused -> error head PL_ERR_HTTP_ORIGIN_UNREACHABLE without addresses', async (t) => {
  const port = await closedPort()
  const { serve, lines } = setup(t, `http://127.0.0.1:${port}`)
  const started = Date.now()
  const relay = serve(head())
  const reply = await readReply(relay)
  t.same(reply, { t: 'error', code: 'PL_ERR_HTTP_ORIGIN_UNREACHABLE', message: 'local server unreachable (ECONNREFUSED)' })
  t.ok(Date.now() - started < 1_000, 'answered in under 1 s')
  const body = await readBody(relay)
  t.equal(body.ended, true, 'then FIN')
  t.ok(lines().some((l) => l['msg'] === 'origin request failed' && l['level'] === 40), 'logged at warn')
})

t.test('invalid origin response (CL and TE) -> PL_ERR_HTTP_BAD_ORIGIN_RESPONSE', async (t) => {
  const raw = await startRawOrigin(t, 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')
  const { serve } = setup(t, `http://127.0.0.1:${raw.port}`)
  const reply = await readReply(serve(head()))
  t.equal(reply.t, 'error')
  t.equal(reply.t === 'error' && reply.code, 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE')
})

t.test('origin dies mid-body -> the stream is reset, never ended cleanly', async (t) => {
  const origin = await startOrigin(t)
  const { serve } = setup(t, origin.url)
  const relay = serve(head({ url: '/truncate' }))
  const reply = await readReply(relay)
  t.equal(reply.t === 'response' && reply.status, 200)
  const body = await readBody(relay)
  t.equal(body.ended, false, 'truncation is visible')
  t.equal(body.bytes.length, 10)
})

t.test('relay resets the stream while the origin is slow -> the origin request is aborted', async (t) => {
  const origin = await startOrigin(t)
  const { serve } = setup(t, origin.url)
  const relay = serve(head({ url: '/slow' }))
  for (let i = 0; i < 100 && origin.seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10))
  t.equal(origin.seen.length, 1, 'the origin got the request')
  relay.destroy()
  for (let i = 0; i < 100 && origin.aborted() === 0; i++) await new Promise((r) => setTimeout(r, 10))
  t.equal(origin.aborted(), 1, 'the origin saw the request go away')
})

t.test('a body longer than its Content-Length is never forwarded beyond it', async (t) => {
  const origin = await startOrigin(t)
  const { serve } = setup(t, origin.url)
  const relay = serve(head({ method: 'POST', url: '/echo', headers: [['Content-Length', '3']] }), [Buffer.from('abcdef')])
  relay.on('error', () => undefined)
  await new Promise<void>((resolve) => relay.once('close', () => resolve()))
  t.equal(origin.seen.filter((s) => s.bodyBytes > 3).length, 0)
})

t.test('invalid header characters become a 400-class error head, not a crash', async (t) => {
  const origin = await startOrigin(t)
  const { serve } = setup(t, origin.url)
  const reply = await readReply(serve(head({ headers: [['X-Bad', 'a\r\nInjected: 1']] })))
  t.same(reply.t === 'error' && reply.code, 'PL_ERR_HTTP_BAD_REQUEST')
  t.equal(origin.connections(), 0)
})

t.test('joinPath and originErrorCode tables', async (t) => {
  const paths: Array<[string, string, string | null]> = [
    ['/', '/a?b=1', '/a?b=1'],
    ['', '/a', '/a'],
    ['/app', '/a', '/app/a'],
    ['/app/', '/', '/app/'],
    ['/', '*', null],
    ['/app', '*', null],
    ['/', 'http://evil/', null],
  ]
  for (const [base, target, want] of paths) t.equal(joinPath(base, target), want, `${base} + ${target}`)
  const codes: Array<[string, string]> = [
    ['ECONNREFUSED', 'PL_ERR_HTTP_ORIGIN_UNREACHABLE'],
    ['ENOTFOUND', 'PL_ERR_HTTP_ORIGIN_UNREACHABLE'],
    ['ETIMEDOUT', 'PL_ERR_HTTP_ORIGIN_UNREACHABLE'],
    ['HPE_INVALID_CONSTANT', 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE'],
    ['ECONNRESET', 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE'],
  ]
  for (const [code, want] of codes) t.equal(originErrorCode(Object.assign(new Error(code), { code })), want, code)
})
