import t from 'tap'
import { HttpRequestHead, ReplyHead, StreamHead } from '../../src/protocol/messages.js'
import { isPlainHttpHead, isPlainResponseHead, isValidReplyHead, parseReplyHead, parseStreamHead } from '../../src/protocol/head-checks.js'

function httpHead(): Record<string, unknown> {
  return {
    t: 'http', tunnel: 'blog', host: 'blog.localhost', method: 'GET', url: '/a?b=1',
    headers: [['User-Agent', 'curl/8'], ['Accept', '*/*'], ['X-Forwarded-For', '203.0.113.9']],
    upgrade: false, has_body: false,
  }
}

function responseHead(): Record<string, unknown> {
  return { t: 'response', status: 200, status_message: 'OK', headers: [['content-length', '5']] }
}

/** Variants around the bounds of each field; every one is judged by zod as well. */
function httpVariants(): Array<[string, unknown]> {
  const v = (name: string, edit: (h: Record<string, unknown>) => void): [string, unknown] => {
    const h = httpHead()
    edit(h)
    return [name, h]
  }
  return [
    v('plain', () => undefined),
    v('no has_body', (h) => { delete h['has_body'] }),
    v('has_body true', (h) => { h['has_body'] = true }),
    v('has_body null', (h) => { h['has_body'] = null }),
    v('upgrade string', (h) => { h['upgrade'] = 'false' }),
    v('no upgrade', (h) => { delete h['upgrade'] }),
    v('unknown key', (h) => { h['extra'] = 1 }),
    v('own __proto__ key', (h) => { Object.defineProperty(h, '__proto__', { value: {}, enumerable: true }) }),
    v('t tcp', (h) => { h['t'] = 'tcp' }),
    v('empty tunnel', (h) => { h['tunnel'] = '' }),
    v('tunnel 253', (h) => { h['tunnel'] = 'a'.repeat(253) }),
    v('tunnel 254', (h) => { h['tunnel'] = 'a'.repeat(254) }),
    v('host number', (h) => { h['host'] = 5 }),
    v('method 32', (h) => { h['method'] = 'M'.repeat(32) }),
    v('method 33', (h) => { h['method'] = 'M'.repeat(33) }),
    v('empty url', (h) => { h['url'] = '' }),
    v('url 16384', (h) => { h['url'] = '/' + 'u'.repeat(16 * 1024 - 1) }),
    v('url 16385', (h) => { h['url'] = '/' + 'u'.repeat(16 * 1024) }),
    v('headers object', (h) => { h['headers'] = { a: 'b' } }),
    v('no headers', (h) => { h['headers'] = [] }),
    v('256 headers', (h) => { h['headers'] = Array.from({ length: 256 }, () => ['a', 'b']) }),
    v('257 headers', (h) => { h['headers'] = Array.from({ length: 257 }, () => ['a', 'b']) }),
    v('header triple', (h) => { h['headers'] = [['a', 'b', 'c']] }),
    v('header single', (h) => { h['headers'] = [['a']] }),
    v('header number value', (h) => { h['headers'] = [['a', 1]] }),
    v('header name 256', (h) => { h['headers'] = [['n'.repeat(256), 'v']] }),
    v('header name 257', (h) => { h['headers'] = [['n'.repeat(257), 'v']] }),
    v('header value 16384', (h) => { h['headers'] = [['n', 'v'.repeat(16 * 1024)]] }),
    v('header value 16385', (h) => { h['headers'] = [['n', 'v'.repeat(16 * 1024 + 1)]] }),
    ['null', null],
    ['array', []],
    ['string', 'http'],
    ['class instance', Object.assign(Object.create({ inherited: true }) as object, httpHead())],
  ]
}

t.test('the fast http-head check accepts only what zod accepts, and accepts the usual heads itself', async (t) => {
  let fastAccepted = 0
  for (const [name, value] of httpVariants()) {
    const fast = isPlainHttpHead(value)
    const zod = HttpRequestHead.safeParse(value).success
    if (fast) {
      fastAccepted++
      t.ok(zod, `${name}: fast path accepted what zod rejects`)
    }
    // Whatever the fast path says, the combined verdict is zod's.
    t.equal(parseStreamHead(value).ok, StreamHead.safeParse(value).success, `${name}: same verdict as zod`)
  }
  // plain, no has_body, has_body true, tunnel 253, method 32, url 16384, no headers, 256 headers, name 256, value 16384
  t.equal(fastAccepted, 10)
})

t.test('parseStreamHead: the fast path returns the head as parsed; tcp heads and garbage go through zod', async (t) => {
  const head = httpHead()
  const plain = parseStreamHead(head)
  t.ok(plain.ok && plain.head === head, 'fast path: no copy')
  const tcp = { t: 'tcp', tunnel: 'ssh', remote_address: '203.0.113.9', remote_port: 5555, local_address: '127.0.0.1', local_port: 22 }
  const viaZod = parseStreamHead(tcp)
  t.ok(viaZod.ok)
  t.same(viaZod.ok ? viaZod.head : null, tcp)
  const bad = parseStreamHead({ ...httpHead(), method: '' })
  t.equal(bad.ok, false)
  t.match(bad.ok ? '' : bad.issue, /too small|>=1|at least/i)
})

t.test('the fast response-head check agrees with zod on the bounds', async (t) => {
  const cases: Array<[string, Record<string, unknown>, boolean]> = [
    ['plain', responseHead(), true],
    ['no status_message', (() => { const h = responseHead(); delete h['status_message']; return h })(), true],
    ['empty status_message', { ...responseHead(), status_message: '' }, true],
    ['status_message 1024', { ...responseHead(), status_message: 'm'.repeat(1024) }, true],
    ['status_message 1025', { ...responseHead(), status_message: 'm'.repeat(1025) }, false],
    ['status 100', { ...responseHead(), status: 100 }, true],
    ['status 999', { ...responseHead(), status: 999 }, true],
    ['status 99', { ...responseHead(), status: 99 }, false],
    ['status 1000', { ...responseHead(), status: 1000 }, false],
    ['status 200.5', { ...responseHead(), status: 200.5 }, false],
    ['status string', { ...responseHead(), status: '200' }, false],
    ['unknown key', { ...responseHead(), extra: true }, false],
    ['t error', { t: 'error', code: 'X', message: 'y' }, false],
    ['257 headers', { ...responseHead(), headers: Array.from({ length: 257 }, () => ['a', 'b']) }, false],
  ]
  for (const [name, value, expected] of cases) {
    t.equal(isPlainResponseHead(value), expected, `${name}: fast`)
    if (expected) t.ok(ReplyHead.safeParse(value).success, `${name}: zod agrees`)
    t.equal(isValidReplyHead(value as ReplyHead), ReplyHead.safeParse(value).success, `${name}: combined verdict is zod's`)
  }
})

t.test('parseReplyHead (the relay reading an agent): plain responses as sent, error heads via zod, garbage throws', async (t) => {
  const plain = responseHead()
  t.equal(parseReplyHead(plain), plain, 'the fast path returns the object itself')
  const error = parseReplyHead({ t: 'error', code: 'PL_ERR_HTTP_ORIGIN_UNREACHABLE', message: 'local server unreachable' })
  t.same(error, { t: 'error', code: 'PL_ERR_HTTP_ORIGIN_UNREACHABLE', message: 'local server unreachable' })
  t.throws(() => parseReplyHead({ ...responseHead(), status: 1000 }))
  t.throws(() => parseReplyHead({ ...responseHead(), extra: 1 }))
  t.throws(() => parseReplyHead('{"t":"response"}'))
})
