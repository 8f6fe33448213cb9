// Property tests (fast-check) for the relay's request-head handling (SECURITY.md B3, B4, B12):
// checkRequest / parseHostHeader / originForm and the header filters in headers.ts, fed arbitrary
// header lists, Host values and request targets. Nothing throws; a routing host is only ever the
// one normalised Host value of the request; relay-owned and hop-by-hop headers never pass the
// filters. Fixed seed in CI (FUZZ_SEED, FUZZ_RUNS_SCALE).
import t from 'tap'
import fc from 'fast-check'
import type { IncomingMessage } from 'node:http'
import { normalizeHostname } from '@porchlight/shared/config'
import { checkRequest, originForm, parseHostHeader } from '../../src/visitors/request-checks.js'
import { RELAY_COOKIE_NAMES, requestHeadersForOrigin, responseHeadersForVisitor, type ForwardedInfo } from '../../src/visitors/headers.js'

const SEED = Number(process.env['FUZZ_SEED'] ?? 0x14f022)
const SCALE = Number(process.env['FUZZ_RUNS_SCALE'] ?? 1)
const runs = (n: number): number => Math.max(1, Math.round(n * SCALE))
t.comment(`fast-check seed ${SEED} (FUZZ_SEED=${SEED} replays it; FUZZ_RUNS_SCALE=${SCALE})`)

function check(t: { pass(msg: string): void; fail(msg: string): void }, name: string, numRuns: number, property: fc.IProperty<any>): void {
  const started = Date.now()
  const out = fc.check(property as fc.IProperty<unknown>, { seed: SEED, numRuns })
  if (out.failed) t.fail(fc.defaultReportMessage(out) ?? `${name} failed`)
  else t.pass(`${name}: ${out.numRuns} cases in ${Date.now() - started} ms`)
}

const PORTS: ReadonlySet<number> = new Set([80, 443, 8080])

// ---------------------------------------------------------------- arbitraries

const hostValueArb = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.constantFrom('a.test', 'b.test', 'A.TEST', 'a.test.', 'B.test'), fc.constantFrom('', ':80', ':443', ':8080')).map(([h, p]) => h + p) },
  { weight: 4, arbitrary: fc.tuple(
    fc.constantFrom('a.test', 'b.test', 'A.TEST', 'a.test.', 'A.Test..', 'xn--a-ecp.test', '127.0.0.1', 'localhost', 'a-b.c-d.test', '1.2.3', 'a_b.test', 'ä.test', 'a'.repeat(64) + '.test'),
    fc.constantFrom('', '', ':80', ':443', ':8080', ':9999', ':', ':0080', ':99999', ':+80', ':80 ', ':80:80'),
  ).map(([h, p]) => h + p) },
  { weight: 2, arbitrary: fc.constantFrom('a.test@b.test', 'a.test b.test', 'a.test\tx', '[::1]:80', '[::1]', '', ' a.test', 'a.test ', 'a.test,b.test', 'a..test', 'http://a.test', 'a.test/x', 'a.test\\b.test', 'a.test%2f', 'a.test\u0000') },
  { weight: 2, arbitrary: fc.stringMatching(/^[a-zA-Z0-9.\-:_[\]@ ]{0,24}$/) },
  { weight: 1, arbitrary: fc.string({ maxLength: 24, unit: 'binary' }) },
)
const headerNameArb = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom('Host', 'host', 'HOST', 'hOsT') },
  { weight: 12, arbitrary: fc.constantFrom('Content-Length', 'content-length', 'Transfer-Encoding', 'transfer-encoding', 'Authorization', 'authorization', 'Connection', 'X-Forwarded-For', 'X-Forwarded-Host', 'X-Forwarded-Proto', 'Forwarded', 'X-Real-IP', 'Cookie', 'Upgrade', 'Keep-Alive', 'TE', 'Proxy-Authorization', 'Proxy-Connection', 'Trailer', 'User-Agent', 'Accept') },
  { weight: 1, arbitrary: fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}$/) },
)
const headerValueArb = fc.oneof(
  hostValueArb,
  fc.constantFrom('chunked', 'Chunked', ' chunked ', 'chunked, identity', 'identity', 'gzip, chunked', '5', '0', '+5', 'close', 'keep-alive', 'Upgrade', 'close, X-Forwarded-For, X-Relay-Auth', 'keep-alive, Host', 'TE, Cookie, Authorization', 'porchlight_access=1', '__Host-porchlight_access=x; Path=/'),
  fc.string({ maxLength: 20 }),
)
/** Headers a request that should pass may carry (so about half the runs reach routing). */
const benignPairArb = fc.tuple(fc.constantFrom('User-Agent', 'Accept', 'X-Forwarded-For', 'Cookie', 'Connection', 'Upgrade', 'X-Custom'), headerValueArb)
const headerListArb = fc.tuple(
  fc.option(hostValueArb, { nil: undefined, freq: 8 }),
  fc.oneof(fc.array(fc.tuple(headerNameArb, headerValueArb), { maxLength: 8 }), fc.array(benignPairArb, { maxLength: 6 })),
  fc.nat(),
).map(([host, rest, at]) => {
  const pairs = [...rest]
  if (host !== undefined) pairs.splice(at % (pairs.length + 1), 0, ['Host', host])
  return pairs
})
const urlArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('/', '/x', '/a/b?c=d', 'http://a.test/', 'http://b.test/x') },
  { weight: 3, arbitrary: fc.constantFrom('/', '/', '/', '/x?y=1', '/?share=abc&x=1', 'http://a.test/', 'http://A.TEST:80/x', 'http://a.test', 'http://a.test?q=1', 'https://a.test./p', 'http://b.test/', 'http://a.test@b.test/', 'http://b.test@a.test/', 'http://[::1]/', '//a.test/', '*', 'a.test:443', 'mailto:a@a.test', 'foo://a.test', 'foo://a.test?q', 'ws://a.test/ws', 'file://a.test/etc/passwd', 'http://a.test:9999/', 'http://a.test%2eb.test/', 'http://0x7f.1/') },
  { weight: 1, arbitrary: fc.webUrl({ withQueryParameters: true, withFragments: true }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 24 }) },
)
const methodArb = fc.oneof({ weight: 12, arbitrary: fc.constantFrom('GET', 'POST', 'HEAD', 'OPTIONS', 'CONNECT', 'PUT') }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) })

/** Node's view of a header list: duplicates of host / content-length / authorization dropped, others joined (as llhttp + IncomingMessage do). */
function fakeRequest(pairs: Array<[string, string]>, url: string, method: string): IncomingMessage {
  const rawHeaders = pairs.flat()
  const headers: Record<string, string> = {}
  for (const [name, value] of pairs) {
    const lower = name.toLowerCase()
    if (lower === 'host' || lower === 'content-length' || lower === 'authorization') headers[lower] ??= value
    else headers[lower] = headers[lower] === undefined ? value : `${headers[lower]}, ${value}`
  }
  return { rawHeaders, headers, url, method } as unknown as IncomingMessage
}

/**
 * The routing host a Host value names, worked out independently of parseHostHeader: an optional
 * trailing `:port` must be one of our listener ports, and the name part must be a plain hostname.
 */
function expectedHost(value: string): string | null {
  const colon = value.lastIndexOf(':')
  let name = value
  if (colon !== -1) {
    const port = value.slice(colon + 1)
    if (!/^[0-9]{1,5}$/.test(port) || !PORTS.has(Number(port))) return null
    name = value.slice(0, colon)
  }
  if (name.includes(':') || name.includes('[') || name.includes(']')) return null
  return normalizeHostname(name)
}

// ---------------------------------------------------------------- properties

t.test('checkRequest: never throws, and routes only to the single normalised Host value (SECURITY B3, B4)', async (t) => {
  const tally = { ok: 0, refused: 0 }
  check(t, 'checkRequest', runs(30_000), fc.property(headerListArb, urlArb, methodArb, (pairs, url, method) => {
    const result = checkRequest(fakeRequest(pairs, url, method), PORTS)
    if (!result.ok) { tally.refused++; return }
    tally.ok++
    const hosts = pairs.filter(([n]) => n.toLowerCase() === 'host')
    if (hosts.length !== 1) throw new Error(`routed with ${hosts.length} Host headers`)
    const want = expectedHost(hosts[0]![1])
    if (want === null || result.host !== want) throw new Error(`routed to ${JSON.stringify(result.host)} for Host ${JSON.stringify(hosts[0]![1])} (expected ${JSON.stringify(want)})`)
    if (normalizeHostname(result.host) !== result.host) throw new Error('routing host not normalised')
    const count = (n: string): number => pairs.filter(([name]) => name.toLowerCase() === n).length
    if (count('content-length') > 1 || count('transfer-encoding') > 1 || count('authorization') > 1) throw new Error('duplicate singleton header accepted')
    if (count('content-length') > 0 && count('transfer-encoding') > 0) throw new Error('CL and TE both accepted')
    if (method === 'CONNECT') throw new Error('CONNECT accepted')
    if (!url.startsWith('/') && !(url === '*' && method === 'OPTIONS')) {
      const target = new URL(url)
      if (normalizeHostname(target.hostname) !== result.host) throw new Error(`absolute target ${url} routed to Host ${result.host}`)
    }
    const path = originForm(url)
    if (!path.startsWith('/') && path !== '*') throw new Error(`accepted target ${JSON.stringify(url)} has origin form ${JSON.stringify(path)}`)
  }))
  t.comment(`outcomes: ${JSON.stringify(tally)}`)
  t.ok(tally.ok > 2000 && tally.refused > 2000, 'the runs reach both verdicts')
})

t.test('parseHostHeader and originForm: never throw on any string; a host is null or normalised', async (t) => {
  check(t, 'parseHostHeader/originForm', runs(20_000), fc.property(fc.oneof(hostValueArb, urlArb, fc.string({ unit: 'binary', maxLength: 40 })), (value) => {
    const host = parseHostHeader(value, PORTS)
    if (host !== expectedHost(value)) throw new Error(`parseHostHeader(${JSON.stringify(value)}) = ${JSON.stringify(host)}, expected ${JSON.stringify(expectedHost(value))}`)
    if (host !== null && (normalizeHostname(host) !== host || host.includes(':'))) throw new Error('host not normalised')
    if (typeof originForm(value) !== 'string') throw new Error('originForm gave no string')
  }))
})

const forwardedArb: fc.Arbitrary<ForwardedInfo> = fc.record({
  clientIp: fc.constantFrom('127.0.0.1', '::1', '203.0.113.9'),
  peerIp: fc.constantFrom('127.0.0.1', '10.0.0.1'),
  trustedChain: fc.option(fc.constantFrom('1.2.3.4', '1.2.3.4, 5.6.7.8'), { nil: null }),
  proto: fc.constantFrom('http' as const, 'https' as const),
  host: fc.constantFrom('a.test', 'b.test'),
})
const FORGED = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded', 'x-real-ip']
const HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'http2-settings']

t.test('requestHeadersForOrigin: never throws; the relay alone sets X-Forwarded-*, hop-by-hop and relay cookies never pass (SECURITY B12)', async (t) => {
  check(t, 'requestHeadersForOrigin', runs(15_000), fc.property(headerListArb, forwardedArb, fc.boolean(), fc.boolean(), fc.option(fc.constant('a=1'), { nil: null }), (pairs, fwd, upgrade, dropAuthorization, cookie) => {
    const out = requestHeadersForOrigin(pairs.flat(), fwd, { upgrade, dropAuthorization, cookie })
    const named = new Set(pairs.filter(([n]) => n.toLowerCase() === 'connection').flatMap(([, v]) => v.split(',').map((s) => s.trim().toLowerCase())).filter((s) => s !== ''))
    const relaySet = out.slice(-3)
    const xff = fwd.trustedChain ? `${fwd.trustedChain}, ${fwd.peerIp}` : fwd.clientIp
    if (JSON.stringify(relaySet) !== JSON.stringify([['X-Forwarded-For', xff], ['X-Forwarded-Proto', fwd.proto], ['X-Forwarded-Host', fwd.host]])) throw new Error(`relay headers ${JSON.stringify(relaySet)}`)
    const visitorPart = out.slice(0, -3)
    for (const [name] of visitorPart) {
      const lower = name.toLowerCase()
      if (FORGED.includes(lower)) throw new Error(`visitor ${name} passed`)
      if (lower === 'cookie' && !(cookie !== null && visitorPart.filter(([n]) => n.toLowerCase() === 'cookie').length === 1)) throw new Error('visitor cookie passed')
      if (lower === 'authorization' && dropAuthorization) throw new Error('relay authorization passed')
      if (HOP.includes(lower) && !(upgrade && (lower === 'upgrade' || lower === 'connection'))) throw new Error(`hop-by-hop ${name} passed`)
      if (named.has(lower) && !(upgrade && (lower === 'upgrade' || lower === 'connection')) && lower !== 'cookie') throw new Error(`${name} named in Connection passed`)
    }
  }))
})

t.test('responseHeadersForVisitor: never throws; hop-by-hop and relay cookies never reach the visitor (SECURITY B13)', async (t) => {
  const setCookie = fc.tuple(fc.constantFrom(...RELAY_COOKIE_NAMES, 'PORCHLIGHT_ACCESS', ' porchlight_access', 'session'), fc.string({ maxLength: 8 })).map(([n, v]) => ['Set-Cookie', `${n}=${v}; Path=/`] as [string, string])
  check(t, 'responseHeadersForVisitor', runs(15_000), fc.property(fc.array(fc.oneof(fc.tuple(headerNameArb, headerValueArb), setCookie), { maxLength: 10 }), fc.boolean(), (pairs, upgrade) => {
    const flat = responseHeadersForVisitor(pairs, { upgrade })
    if (flat.length % 2 !== 0) throw new Error('odd flat list')
    for (let i = 0; i < flat.length; i += 2) {
      const lower = flat[i]!.toLowerCase()
      if (lower === 'set-cookie' && RELAY_COOKIE_NAMES.some((n) => n.toLowerCase() === flat[i + 1]!.split('=', 1)[0]!.trim().toLowerCase())) throw new Error('relay cookie set by the origin passed')
      if (!upgrade && HOP.includes(lower)) throw new Error(`hop-by-hop ${flat[i]} passed`)
    }
  }))
})
