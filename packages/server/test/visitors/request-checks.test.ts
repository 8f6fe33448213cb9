import t from 'tap'
import type { IncomingMessage } from 'node:http'
import { checkRequest, originForm, parseHostHeader } from '../../src/visitors/request-checks.js'

const ports = new Set([80, 443, 8080])

function req(rawHeaders: string[], url = '/', method = 'GET'): IncomingMessage {
  const headers: Record<string, string> = {}
  for (let i = 0; i < rawHeaders.length; i += 2) headers[rawHeaders[i]!.toLowerCase()] ??= rawHeaders[i + 1]!
  return { rawHeaders, headers, url, method } as unknown as IncomingMessage
}

t.test('Host variants normalise to one routing host (SECURITY B3)', async (t) => {
  const cases: Array<[string, string | null]> = [
    ['a.test', 'a.test'], ['A.TEST', 'a.test'], ['a.test.', 'a.test'], ['a.test:80', 'a.test'],
    ['a.test:443', 'a.test'], ['a.test:8080', 'a.test'], ['a.test:9999', null], ['a.test@b.test', null],
    ['a.test b.test', null], ['a.test\tx', null], ['', null], ['[::1]:80', null],
  ]
  for (const [value, want] of cases) t.equal(parseHostHeader(value, ports), want, JSON.stringify(value))
})

t.test('ambiguous requests are refused before routing (SECURITY B3, B4)', async (t) => {
  t.same(checkRequest(req(['Host', 'a.test']), ports), { ok: true, host: 'a.test' })
  t.match(checkRequest(req(['Host', 'a.test', 'Host', 'b.test']), ports), { ok: false, reason: /duplicate host/ })
  t.match(checkRequest(req(['Host', 'a.test', 'Content-Length', '1', 'content-length', '1']), ports), { ok: false, reason: /duplicate content-length/ })
  t.match(checkRequest(req(['Host', 'a.test', 'Content-Length', '6', 'Transfer-Encoding', 'chunked']), ports), { ok: false, reason: /both/ })
  t.match(checkRequest(req(['Host', 'a.test', 'Transfer-Encoding', 'chunked, identity']), ports), { ok: false })
  t.match(checkRequest(req(['Host', 'a.test', 'Authorization', 'x', 'Authorization', 'y']), ports), { ok: false })
  t.match(checkRequest(req(['Host', 'a.test'], 'http://b.test/'), ports), { ok: false, reason: /does not match/ })
  t.same(checkRequest(req(['Host', 'a.test'], 'http://a.test/x'), ports), { ok: true, host: 'a.test' })
  t.match(checkRequest(req(['Host', '127.0.0.1:22'], '127.0.0.1:22', 'CONNECT'), ports), { ok: false, reason: /CONNECT/ })
  t.match(checkRequest(req([]), ports), { ok: false, reason: /missing host/ })
  // Found by test/visitors/fuzz.test.ts: a non-http scheme names the host but has no origin form.
  t.match(checkRequest(req(['Host', 'a.test'], 'foo://a.test'), ports), { ok: false, reason: /not http or https/ })
})

t.test('originForm keeps path and query only', async (t) => {
  t.equal(originForm('/a?b=1'), '/a?b=1')
  t.equal(originForm('http://a.test/x/y?z=2'), '/x/y?z=2')
  t.equal(originForm('*'), '*')
  t.equal(originForm('foo://a.test?q'), '/?q')
})
