// SECURITY.md B1, B2, B10 (a), B11, B15, C8 (.well-known), C10 and E9 against the real relay and
// agent: raw bytes on the public listener, the admin listener without credentials, and what the
// relay's log makes of hostile bytes.
import t from 'tap'
import { startHttpOrigin } from '../e2e/harness/origins.js'
import { startAgent, startRelay } from '../e2e/harness/processes.js'
import { startConnectionCounter } from '../e2e/harness/tcp.js'
import { rawExchange, rawStatus } from '../e2e/harness/visitor.js'

const origin = await startHttpOrigin(t)
const relay = await startRelay(t)
await startAgent(t, relay, {
  tunnels: [
    { http: 'site', to: origin.url },
    { http: 'locked', to: origin.url, access: { links: true } },
  ],
})
const port = relay.publicPort

/** Every status line in a raw exchange, in order. */
function statuses(response: string): number[] {
  return [...response.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]))
}

/** rawExchange, but a reset with nothing read counts as an empty, closed answer. */
async function raw(payload: string | Buffer, waitMs = 3000): Promise<{ response: string; closedByServer: boolean }> {
  try {
    return await rawExchange(port, payload, waitMs)
  } catch {
    return { response: '', closedByServer: true }
  }
}

t.test('B1: an unknown Host gets the generic 404, names no site, and the connection serves the next request', async (t) => {
  const before = origin.requestCount
  const { response } = await raw('GET / HTTP/1.1\r\nHost: nope.localhost\r\n\r\nGET /status/204 HTTP/1.1\r\nHost: site.localhost\r\nConnection: close\r\n\r\n')
  t.same(statuses(response), [404, 204], 'one keep-alive connection: 404, then 204')
  t.match(response, /x-porchlight-error: PL_ERR_HTTP_UNKNOWN_HOST/i)
  t.notMatch(response, /site\.localhost|locked\.localhost|127\.0\.0\.1/, 'no published host or address in the page')
  t.equal(origin.requestCount, before + 1, 'only the second request reached an origin')
})

t.test('B2: HTTP/1.1 without Host or with an empty one is 400; HTTP/1.0 without Host is 400 or 404; never routed', async (t) => {
  const before = origin.requestCount
  for (const [what, bytes] of [
    ['1.1 without Host', 'GET / HTTP/1.1\r\n\r\n'],
    ['1.1 with Host: empty', 'GET / HTTP/1.1\r\nHost:\r\n\r\n'],
    ['1.1 with Host: spaces', 'GET / HTTP/1.1\r\nHost:   \r\n\r\n'],
  ] as const) {
    const { response, closedByServer } = await raw(bytes)
    t.equal(rawStatus(response), 400, what)
    t.ok(closedByServer, `${what}: closed`)
  }
  const old = await raw('GET / HTTP/1.0\r\n\r\n')
  t.ok([400, 404].includes(rawStatus(old.response)), `1.0 without Host: ${rawStatus(old.response)}`)
  t.equal(origin.requestCount, before, 'nothing reached an origin')
})

t.test('B10 (a): a WebSocket upgrade to an unknown host is 404 with no 101', async (t) => {
  const { response, closedByServer } = await raw('GET /ws HTTP/1.1\r\nHost: nope.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  t.same(statuses(response), [404])
  t.ok(closedByServer)
})

t.test('B11: the relay is not a forward proxy: CONNECT and absolute-form targets reach nothing', async (t) => {
  const spy = await startConnectionCounter(t)
  const adminPort = relay.adminPort ?? 0
  const cases: Array<[string, string, number[]]> = [
    ['CONNECT to a local port', `CONNECT 127.0.0.1:${spy.port} HTTP/1.1\r\nHost: 127.0.0.1:${spy.port}\r\n\r\n`, [405]],
    ['CONNECT to :22', 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n', [405]],
    ['metadata URL, published Host', 'GET http://169.254.169.254/latest/meta-data HTTP/1.1\r\nHost: site.localhost\r\n\r\n', [400]],
    ['metadata URL and Host', 'GET http://169.254.169.254/latest/meta-data HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n', [404]],
    ['a local port as target', `GET http://127.0.0.1:${spy.port}/ HTTP/1.1\r\nHost: 127.0.0.1:${spy.port}\r\n\r\n`, [400]],
    ['the admin API as target', `GET http://127.0.0.1:${adminPort}/api/agents HTTP/1.1\r\nHost: 127.0.0.1:${adminPort}\r\nAuthorization: Bearer ${relay.adminToken}\r\n\r\n`, [400]],
  ]
  for (const [what, bytes, expected] of cases) {
    const { response } = await raw(bytes)
    t.same(statuses(response).slice(0, 1), expected, what)
    t.notMatch(response, /"name"|\[\]|session/, `${what}: no admin data`)
  }
  t.equal(spy.count(), 0, 'the relay opened no connection to the spy')
})

t.test('B15: no path rules exist, so paths reach the origin as sent; access covers every path; the admin API is not on the public listener', async (t) => {
  const tricks = ['/%2e%2e/secret', '//secret', '/docs/..%2fsecret', '/docs%00/..', '/docs/..;/', '/.well-known/acme-challenge/x']
  for (const path of tricks) {
    const { response } = await raw(`GET ${path} HTTP/1.1\r\nHost: locked.localhost\r\nConnection: close\r\n\r\n`)
    t.equal(rawStatus(response), 401, `C8/B15 protected site ${path}: 401`)
  }
  for (const path of tricks) {
    const { response } = await raw(`GET ${path} HTTP/1.1\r\nHost: site.localhost\r\nConnection: close\r\n\r\n`)
    t.equal(rawStatus(response), 200, `open site ${path}: 200`)
    t.ok(origin.requests.some((r) => r.url === path), `${path} reached the origin byte for byte`)
  }
  for (const host of ['localhost', '127.0.0.1', `127.0.0.1:${port}`, `localhost:${relay.adminPort}`]) {
    const { response } = await raw(`GET /api/agents HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${relay.adminToken}\r\nConnection: close\r\n\r\n`)
    t.ok([400, 404].includes(rawStatus(response)), `public listener, Host ${host}: ${rawStatus(response)}`)
    t.notMatch(response, /"session"/, 'no admin data')
  }
})

t.test('C10: every admin API route without the token is 401; a foreign Host is refused; no CORS header is ever sent', async (t) => {
  const admin = relay.adminUrl!
  // The registered API routes (admin/plugin.ts); /healthz and the dashboard page carry no data.
  for (const path of ['/api/agents', '/api/links', '/metrics']) {
    const res = await fetch(`${admin}${path}`, { headers: { origin: 'http://evil.test', cookie: 'session=1' } })
    t.equal(res.status, 401, `GET ${path} without the token: 401`)
    t.match(await res.json(), { code: 'PL_ERR_ADMIN_UNAUTHORIZED' })
    t.equal(res.headers.get('access-control-allow-origin'), null, `GET ${path}: no CORS`)
    const cookieOnly = await fetch(`${admin}${path}`, { headers: { cookie: `token=${relay.adminToken}` } })
    t.equal(cookieOnly.status, 401, `GET ${path} with the token in a cookie: 401`)
  }
  // Other methods and unregistered paths: never 200, never CORS.
  for (const path of ['/api/agents', '/api/agents/laptop', '/api/nothing']) {
    for (const method of ['POST', 'DELETE', 'PUT']) {
      const res = await fetch(`${admin}${path}`, { method, headers: { origin: 'http://evil.test' } })
      t.ok([401, 404].includes(res.status), `${method} ${path}: ${res.status}`)
      t.equal(res.headers.get('access-control-allow-origin'), null, `${method} ${path}: no CORS`)
    }
  }
  const rebound = await rawExchange(relay.adminPort!, `GET /api/agents HTTP/1.1\r\nHost: evil.test\r\nAuthorization: Bearer ${relay.adminToken}\r\nConnection: close\r\n\r\n`)
  t.equal(rawStatus(rebound.response), 421, 'DNS rebinding Host: 421 PL_ERR_ADMIN_BAD_HOST')
  const preflight = await fetch(`${admin}/api/agents`, { method: 'OPTIONS', headers: { origin: 'http://evil.test', 'access-control-request-method': 'GET' } })
  t.equal(preflight.headers.get('access-control-allow-origin'), null, 'preflight: no CORS')
})

t.test('E9: 2,000 malformed requests with CR/LF and ANSI escapes: no log line per request, none forged, all lines JSON', async (t) => {
  const linesBefore = relay.current.stdoutLines.length
  const bad = [
    'GET /\x1b[31mred HTTP/1.1\r\nHost: site.localhost\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: site.localhost\r\nUser-Agent: x\x1b[2J\x1b[H{"level":50,"msg":"forged"}\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: site.localhost\r\nX: a\rb\r\n\r\n',
    'GET /\r\n{"level":60,"msg":"forged"} HTTP/1.1\r\n\r\n',
  ]
  const socketsAtOnce = 50
  for (let round = 0; round < 2000 / socketsAtOnce; round++) {
    await Promise.all(Array.from({ length: socketsAtOnce }, (_, i) => raw(bad[(round + i) % bad.length]!, 2000)))
  }
  // One good request whose path and User-Agent carry escapes that HTTP allows: the access line
  // holds them JSON-escaped, on one line.
  await raw('GET /%1b%5b31m%0d%0a HTTP/1.1\r\nHost: site.localhost\r\nUser-Agent: evil\t{"msg":"forged"}\r\nConnection: close\r\n\r\n')
  await relay.waitForLog((l) => l['msg'] === 'request' && String(l['url']).startsWith('/%1b'), 5000, 'the access line')
  const added = relay.current.stdoutLines.slice(linesBefore)
  t.ok(added.length <= 10, `${added.length} log lines for 2,000 malformed requests`)
  for (const line of added) {
    t.doesNotThrow(() => JSON.parse(line), 'every line is one JSON object')
    t.notMatch(line, /\x1b|\r/, 'no raw escape or CR in a line')
  }
  t.notOk(relay.logs().some((l) => l['msg'] === 'forged'), 'no forged line')
  t.equal(relay.current.running, true)
})
