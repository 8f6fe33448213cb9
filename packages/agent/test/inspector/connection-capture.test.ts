// The inspector's view of a piped connection stream: copies of each direction, parsed on the side.
import { PassThrough } from 'node:stream'
import t from 'tap'
import { canCaptureConnections, captureConnection } from '../../src/inspector/connection-capture.js'
import type { ExchangeStart } from '../../src/inspector/capture.js'
import type { TrafficHook } from '../../src/inspector/traffic.js'

interface Seen { start: ExchangeStart; requestBody: string; status?: number; message?: string; headers?: Array<[string, string]>; responseBody: string; ended?: { code: string; message: string } | 'ok' }

function recorder(): { hook: TrafficHook; seen: Seen[] } {
  const seen: Seen[] = []
  const hook: TrafficHook = {
    begin(start) {
      const s: Seen = { start, requestBody: '', responseBody: '' }
      seen.push(s)
      return {
        requestBody: (c) => { s.requestBody += c.toString('latin1') },
        response: (status, message, headers) => { Object.assign(s, { status, message, headers }) },
        responseBody: (c) => { s.responseBody += c.toString('latin1') },
        end: (error) => { s.ended = error ?? 'ok' },
      }
    },
  }
  return { hook, seen }
}

function setup(): { seen: Seen[]; toOrigin: PassThrough; fromOrigin: PassThrough } {
  const { hook, seen } = recorder()
  const toOrigin = new PassThrough()
  const fromOrigin = new PassThrough()
  captureConnection(hook, 'web', 'site.example.com', toOrigin, fromOrigin)
  return { seen, toOrigin, fromOrigin }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r))

t.test('Node\'s parser is available on this Node', async (t) => {
  t.equal(canCaptureConnections, true)
})

t.test('keep-alive exchanges, a chunked body each way, a HEAD, split across writes', async (t) => {
  const { seen, toOrigin, fromOrigin } = setup()
  toOrigin.write('GET /a?q=1 HTTP/1.1\r\nHost: myapp.test\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n')
  fromOrigin.write('HTTP/1.1 200 OK\r\nContent-Le')
  fromOrigin.write('ngth: 5\r\n\r\nhel')
  fromOrigin.write('lo')
  toOrigin.write('POST /up HTTP/1.1\r\nHost: myapp.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n')
  fromOrigin.write('HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n')
  toOrigin.write('HEAD /h HTTP/1.1\r\nHost: myapp.test\r\n\r\n')
  fromOrigin.write('HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n')
  await tick()
  t.equal(seen.length, 3)
  t.match(seen[0], { start: { tunnel: 'web', host: 'site.example.com', method: 'GET', path: '/a?q=1' }, status: 200, message: 'OK', responseBody: 'hello', ended: 'ok' })
  t.same(seen[0]!.start.headers, [['Host', 'myapp.test'], ['X-Forwarded-For', '203.0.113.9']])
  t.match(seen[1], { start: { method: 'POST', path: '/up' }, requestBody: 'abc', status: 201, responseBody: 'ok', ended: 'ok' })
  t.match(seen[2], { start: { method: 'HEAD' }, status: 200, responseBody: '', ended: 'ok' }, 'a HEAD answer has no body whatever its Content-Length')
})

t.test('a response the parser refuses ends the capture with a code; the streams are not touched', async (t) => {
  const { seen, toOrigin, fromOrigin } = setup()
  toOrigin.write('GET /x HTTP/1.1\r\nHost: a\r\n\r\n')
  fromOrigin.write('NOT HTTP AT ALL\r\n\r\n')
  await tick()
  t.same(seen[0]!.ended, { code: 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE', message: 'the local server sent an invalid response' })
  t.equal(toOrigin.destroyed || fromOrigin.destroyed, false)
  t.equal(fromOrigin.listenerCount('data'), 0, 'no more parsing on this connection')
})

t.test('a connection that closes before its response: the exchange ends as reset', async (t) => {
  const { seen, toOrigin, fromOrigin } = setup()
  toOrigin.write('GET /slow HTTP/1.1\r\nHost: a\r\n\r\n')
  await tick()
  fromOrigin.destroy()
  await tick()
  t.same(seen[0]!.ended, { code: 'PL_ERR_MUX_STREAM_RESET', message: 'the connection closed before the response' })
})

t.test('a close-delimited response completes at the end of the stream', async (t) => {
  const { seen, toOrigin, fromOrigin } = setup()
  toOrigin.write('GET /old HTTP/1.1\r\nHost: a\r\n\r\n')
  fromOrigin.end('HTTP/1.1 200 OK\r\n\r\nuntil the close')
  fromOrigin.resume()
  await tick()
  await tick()
  t.match(seen[0], { status: 200, responseBody: 'until the close', ended: 'ok' })
})
