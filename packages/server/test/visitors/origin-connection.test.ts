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
