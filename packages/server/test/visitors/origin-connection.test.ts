// OriginConnection alone, over a Duplex the test plays the agent's side of: what it writes for a
// request, how it reads responses, and the states a stream can be left in between requests.
import { Duplex } from 'node:stream'
import t from 'tap'
import type { ErrorCode } from '@porchlight/shared/errors'
import { MessageDecoder } from '@porchlight/shared/protocol'
import type { SessionRef } from '../../src/agents/registry.js'
import { OriginConnection, type ExchangeHandlers } from '../../src/visitors/origin-connection.js'

/** The relay's end of a stream: what it writes is collected; what the test pushes is "the origin". */
class FakeStream extends Duplex {
  written = Buffer.alloc(0)
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.written = Buffer.concat([this.written, chunk])
    done()
  }
}

function fakeSession(): { session: SessionRef; streams: FakeStream[] } {
  const streams: FakeStream[] = []
  const session: SessionRef = {
    agent: 'laptop', instance: 'i-1', id: 's-1', isClosed: false,
    openStream: () => { const s = new FakeStream(); streams.push(s); return s },
    whenLeaving: () => () => undefined,
  }
  return { session, streams }
}

interface Seen { head?: { status: number; headers: string[] }; body: string; ended: boolean; failure?: ErrorCode; cut: boolean }
function recorder(opts: { onBody?: (seen: Seen) => void } = {}): { seen: Seen; handlers: ExchangeHandlers } {
  const seen: Seen = { body: '', ended: false, cut: false }
  return {
    seen,
    handlers: {
      onHead: (status, _message, headers) => { seen.head = { status, headers }; return true },
      onBody: (chunk) => { seen.body += chunk.toString('latin1'); opts.onBody?.(seen) },
      onEnd: () => { seen.ended = true },
      onFailure: (code) => { seen.failure = code },
      onCut: () => { seen.cut = true },
    },
  }
}

const OPTS = { isHead: false, hasBody: false, chunked: false, timeoutMs: 2000 }
const tick = (): Promise<void> => new Promise((r) => setImmediate(r))
/** What the relay wrote after the framed http-conn head. */
function requestBytes(stream: FakeStream): string {
  const decoder = new MessageDecoder()
  decoder.push(stream.written, 1)
  return decoder.takeRest().toString('latin1')
}

t.test('the request goes out as written, behind the http-conn head, and the response is read', async (t) => {
  const { session, streams } = fakeSession()
  const conn = new OriginConnection(session, 'web', 'site.test')
  const a = recorder()
  t.ok(conn.begin('GET /x HTTP/1.1\r\nHost: app\r\n\r\n', OPTS, a.handlers))
  t.equal(requestBytes(streams[0]!), 'GET /x HTTP/1.1\r\nHost: app\r\n\r\n')
  streams[0]!.push('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\n\r\nhi')
  await tick()
  t.same(a.seen, { head: { status: 200, headers: ['Content-Length', '2', 'X-A', '1'] }, body: 'hi', ended: true, cut: false })
})

t.test('a response that ended while its reader was paused leaves the stream flowing for the next one', async (t) => {
  const { session, streams } = fakeSession()
  const conn = new OriginConnection(session, 'web', 'site.test')
  // The visitor's socket is full at the last body chunk: paused, and no drain ever comes for it.
  const a = recorder({ onBody: () => conn.pauseReading() })
  conn.begin('GET /a HTTP/1.1\r\n\r\n', OPTS, a.handlers)
  streams[0]!.push('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na')
  await tick()
  t.equal(a.seen.ended, true)
  const b = recorder()
  conn.begin('GET /b HTTP/1.1\r\n\r\n', OPTS, b.handlers)
  streams[0]!.push('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb')
  await tick()
  await tick()
  t.equal(streams.length, 1, 'the same stream')
  t.same([b.seen.body, b.seen.ended], ['b', true], 'the second response was read')
})

t.test('bytes behind a complete response close the stream; they answer nothing', async (t) => {
  const { session, streams } = fakeSession()
  const conn = new OriginConnection(session, 'web', 'site.test')
  const a = recorder()
  conn.begin('GET /a HTTP/1.1\r\n\r\n', OPTS, a.handlers)
  streams[0]!.push('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged')
  await tick()
  t.same([a.seen.body, a.seen.ended], ['a', true])
  t.equal(streams[0]!.destroyed, true, 'the stream that carried the extra response is closed')
  const b = recorder()
  conn.begin('GET /b HTTP/1.1\r\n\r\n', OPTS, b.handlers)
  t.equal(streams.length, 2, 'the next request gets a new stream')
  t.equal(b.seen.body, '', 'and never sees the forged body')
})

t.test('pipelined requests wait their turn: one request on the stream at a time', async (t) => {
  const { session, streams } = fakeSession()
  const conn = new OriginConnection(session, 'web', 'site.test')
  const order: string[] = []
  const a = recorder()
  conn.begin('GET /a HTTP/1.1\r\n\r\n', OPTS, a.handlers)
  t.equal(conn.busy, true)
  t.equal(conn.whenFree(() => { order.push('b'); conn.begin('GET /b HTTP/1.1\r\n\r\n', OPTS, recorder().handlers) }), true)
  await tick()
  t.same(order, [], 'b waits while a is in flight')
  t.notMatch(requestBytes(streams[0]!), /GET \/b/, 'b was not written behind a')
  streams[0]!.push('HTTP/1.1 204 No Content\r\n\r\n')
  await tick()
  t.same(order, ['b'], 'b starts once a is answered')
  t.match(requestBytes(streams[0]!), /GET \/a HTTP\/1.1\r\n\r\nGET \/b HTTP\/1.1\r\n\r\n$/)
})

t.test('an interim 1xx is read and not passed on; 101 is refused', async (t) => {
  const { session, streams } = fakeSession()
  const conn = new OriginConnection(session, 'web', 'site.test')
  const a = recorder()
  conn.begin('GET /a HTTP/1.1\r\n\r\n', OPTS, a.handlers)
  streams[0]!.push('HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
  await tick()
  t.same([a.seen.head?.status, a.seen.body, a.seen.ended], [200, 'ok', true])
  const b = recorder()
  conn.begin('GET /b HTTP/1.1\r\n\r\n', OPTS, b.handlers)
  streams.at(-1)!.push('HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n')
  await tick()
  t.equal(b.seen.failure, 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE')
  t.equal(b.seen.head, undefined, 'nothing reached the visitor')
})

// A Content-Length body is counted by the relay, not fed through llhttp (counted-body.ts).
t.test('a Content-Length body is passed on as slices of the chunks it came in, not copies', async (t) => {
  const { session, streams } = fakeSession()
  const conn = new OriginConnection(session, 'web', 'site.test')
  const pieces: Buffer[] = []
  const a = recorder()
  conn.begin('GET /a HTTP/1.1\r\n\r\n', OPTS, { ...a.handlers, onBody: (chunk) => { pieces.push(chunk); a.handlers.onBody(chunk) } })
  const first = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd')
  const second = Buffer.from('efghij')
  streams[0]!.push(first)
  streams[0]!.push(second)
  await tick()
  t.same([a.seen.body, a.seen.ended], ['abcdefghij', true])
  t.equal(pieces[0]!.buffer, first.buffer, 'the first piece shares the pushed chunk\'s memory')
  t.equal(pieces[1], second, 'a chunk that is all body goes on as it is')
})

t.test('a counted body split byte by byte arrives whole, once, and the stream is reused', async (t) => {
  const { session, streams } = fakeSession()
  const conn = new OriginConnection(session, 'web', 'site.test')
  const a = recorder()
  conn.begin('GET /a HTTP/1.1\r\n\r\n', OPTS, a.handlers)
  for (const byte of Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello')) streams[0]!.push(Buffer.from([byte]))
  await tick()
  t.same([a.seen.body, a.seen.ended, a.seen.cut], ['hello', true, false])
  const b = recorder()
  conn.begin('GET /b HTTP/1.1\r\n\r\n', OPTS, b.handlers)
  // The parser starts afresh for the next response: a chunked one after a counted one.
  streams[0]!.push('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n')
  await tick()
  const c = recorder()
  conn.begin('GET /c HTTP/1.1\r\n\r\n', OPTS, c.handlers)
  streams[0]!.push('HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnop')
  await tick()
  t.equal(streams.length, 1, 'one stream for all three')
  t.same([b.seen.head?.status, b.seen.body, b.seen.ended], [200, 'abcde', true], 'chunked is still parsed')
  t.same([c.seen.head?.status, c.seen.body, c.seen.ended], [404, 'nop', true])
})

t.test('bytes past a counted body are never passed on and close the stream', async (t) => {
  for (const [name, parts] of [
    ['in the same chunk', ['HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcXYZ']],
    ['in the chunk that ends the body', ['HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\na', 'bcHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged']],
    ['a chunk later', ['HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc', 'forged']],
  ] as const) {
    const { session, streams } = fakeSession()
    const conn = new OriginConnection(session, 'web', 'site.test')
    const a = recorder()
    conn.begin('GET /a HTTP/1.1\r\n\r\n', OPTS, a.handlers)
    for (const part of parts) streams[0]!.push(part)
    await tick()
    t.same([a.seen.body, a.seen.ended, a.seen.cut], ['abc', true, false], `${name}: the body, exactly`)
    t.equal(streams[0]!.destroyed, true, `${name}: the stream is closed`)
    const b = recorder()
    conn.begin('GET /b HTTP/1.1\r\n\r\n', OPTS, b.handlers)
    await tick()
    t.equal(streams.length, 2, `${name}: the next request gets a new stream`)
    t.same([b.seen.head, b.seen.body], [undefined, ''], `${name}: and sees none of the extra bytes`)
  }
})

t.test('a line break behind a counted body is skipped, as llhttp skips it', async (t) => {
  const { session, streams } = fakeSession()
  const conn = new OriginConnection(session, 'web', 'site.test')
  const a = recorder()
  conn.begin('GET /a HTTP/1.1\r\n\r\n', OPTS, a.handlers)
  streams[0]!.push('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc\r\n')
  await tick()
  const b = recorder()
  conn.begin('GET /b HTTP/1.1\r\n\r\n', OPTS, b.handlers)
  streams[0]!.push('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
  await tick()
  t.equal(streams.length, 1)
  t.same([a.seen.body, b.seen.body, b.seen.ended], ['abc', 'ok', true])
})

t.test('a counted body short of its length is cut, whether the stream ends or closes', async (t) => {
  for (const how of ['end', 'close'] as const) {
    const { session, streams } = fakeSession()
    const conn = new OriginConnection(session, 'web', 'site.test')
    const a = recorder()
    conn.begin('GET /a HTTP/1.1\r\n\r\n', OPTS, a.handlers)
    streams[0]!.push('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc')
    if (how === 'end') streams[0]!.push(null)
    else { await tick(); streams[0]!.destroy() }
    await tick()
    t.same([a.seen.body, a.seen.ended, a.seen.cut], ['abc', false, true], how)
  }
})

t.test('no body is counted where llhttp reads none: HEAD, 204, 304', async (t) => {
  const { session, streams } = fakeSession()
  const conn = new OriginConnection(session, 'web', 'site.test')
  const a = recorder()
  conn.begin('HEAD /a HTTP/1.1\r\n\r\n', { ...OPTS, isHead: true }, a.handlers)
  streams[0]!.push('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n')
  await tick()
  const b = recorder()
  conn.begin('GET /b HTTP/1.1\r\n\r\n', OPTS, b.handlers)
  streams[0]!.push('HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n')
  await tick()
  const c = recorder()
  conn.begin('GET /c HTTP/1.1\r\n\r\n', OPTS, c.handlers)
  streams[0]!.push('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
  await tick()
  t.equal(streams.length, 1)
  t.same([a.seen.body, a.seen.ended, b.seen.body, b.seen.ended, c.seen.body], ['', true, '', true, 'ok'])
})
