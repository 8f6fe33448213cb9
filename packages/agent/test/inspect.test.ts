import http from 'node:http'
import t, { type Test } from 'tap'
import { PorchlightError } from '@porchlight/shared/errors'
import { hostAllowed, InspectServer, originAllowed, statusForError } from '../src/inspect.js'
import { callInspect } from '../src/inspect-client.js'
import { memoryLogger } from './helpers/log.js'

interface Answer {
  status: number
  body: unknown
}

function raw(port: number, options: { method?: string; path: string; headers?: Record<string, string>; body?: string }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path, headers: options.headers ?? {}, setHost: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') }))
    })
    req.on('error', reject)
    req.end(options.body)
  })
}

async function startInspect(t: Test) {
  const requests: Array<{ op: string; args: Record<string, unknown> }> = []
  const server = new InspectServer({ host: '127.0.0.1', port: 0 }, {
    status: () => ({ connected: true, tunnels: [] }),
    request: async (op, args) => {
      requests.push({ op, args })
      if (op === 'link.revoke' && args['id'] === 'missing') throw Object.assign(new PorchlightError('PL_ERR_NOT_FOUND', ['link missing']), {})
      if (op === 'link.list') throw new PorchlightError('PL_ERR_LINK_LOST', ['not connected to the relay'])
      return { op, ok: true }
    },
    log: memoryLogger().log,
  })
  const bound = await server.listen()
  t.teardown(() => server.close())
  return { port: bound.port, requests, address: bound }
}

t.test('Host check table (DNS rebinding)', async (t) => {
  const table: Array<[string | undefined, boolean]> = [
    ['127.0.0.1:4040', true],
    ['127.0.0.1', true],
    ['localhost:4040', true],
    ['LOCALHOST', true],
    ['[::1]:4040', true],
    [undefined, false],
    ['', false],
    ['evil.example:4040', false],
    ['127.0.0.1.evil.example', false],
    ['localhost.evil.example', false],
    ['127.0.0.2:4040', false],
    ['::1', false],
    ['127.0.0.1:4040@evil', false],
  ]
  for (const [host, ok] of table) t.equal(hostAllowed(host), ok, String(host))
  const origins: Array<[string | undefined, boolean]> = [
    [undefined, true],
    ['http://127.0.0.1:4040', true],
    ['http://localhost:3000', true],
    ['https://evil.example', false],
    ['null', false],
    ['file://', false],
  ]
  for (const [origin, ok] of origins) t.equal(originAllowed(origin), ok, String(origin))
})

t.test('GET /api/status; a foreign Host or Origin gets 403', async (t) => {
  const { port } = await startInspect(t)
  const ok = await raw(port, { path: '/api/status', headers: { host: `127.0.0.1:${port}` } })
  t.same(ok, { status: 200, body: { connected: true, tunnels: [] } })
  const rebinding = await raw(port, { path: '/api/status', headers: { host: `evil.example:${port}` } })
  t.equal(rebinding.status, 403)
  t.same(rebinding.body, { error: { code: 'PL_ERR_ACCESS_DENIED', message: 'access denied' } })
  const crossSite = await raw(port, { path: '/api/status', headers: { host: `localhost:${port}`, origin: 'https://evil.example' } })
  t.equal(crossSite.status, 403)
})

t.test('link routes are forwarded to the relay as control requests', async (t) => {
  const { port, requests } = await startInspect(t)
  const host = { host: `127.0.0.1:${port}` }
  const created = await raw(port, { method: 'POST', path: '/api/links', headers: { ...host, 'content-type': 'application/json' }, body: JSON.stringify({ host: 'blog.localhost', expires: '30m', note: 'for bob' }) })
  t.same(created, { status: 201, body: { op: 'link.create', ok: true } })
  t.same(requests[0], { op: 'link.create', args: { host: 'blog.localhost', expires_ms: 1_800_000, note: 'for bob' } })
  const defaults = await raw(port, { method: 'POST', path: '/api/links', headers: { ...host, 'content-type': 'application/json' }, body: JSON.stringify({ host: 'blog.localhost' }) })
  t.equal(defaults.status, 201)
  t.same(requests[1]?.args, { host: 'blog.localhost', expires_ms: 86_400_000, note: '' })
  const revoked = await raw(port, { method: 'DELETE', path: '/api/links/abc_123', headers: host })
  t.same(revoked, { status: 200, body: { op: 'link.revoke', ok: true } })
  t.same(requests[2], { op: 'link.revoke', args: { id: 'abc_123' } })
  const missing = await raw(port, { method: 'DELETE', path: '/api/links/missing', headers: host })
  t.same(missing, { status: 404, body: { error: { code: 'PL_ERR_NOT_FOUND', message: 'link missing not found' } } })
  const offline = await raw(port, { path: '/api/links', headers: host })
  t.same(offline, { status: 503, body: { error: { code: 'PL_ERR_LINK_LOST', message: 'relay link lost: not connected to the relay' } } })
})

t.test('bad bodies and unknown routes', async (t) => {
  const { port, requests } = await startInspect(t)
  const host = { host: `127.0.0.1:${port}` }
  const form = await raw(port, { method: 'POST', path: '/api/links', headers: { ...host, 'content-type': 'application/x-www-form-urlencoded' }, body: 'host=blog' })
  t.equal(form.status, 400, 'a plain HTML form cannot create links')
  const junk = await raw(port, { method: 'POST', path: '/api/links', headers: { ...host, 'content-type': 'application/json' }, body: '{nope' })
  t.equal(junk.status, 400)
  const extra = await raw(port, { method: 'POST', path: '/api/links', headers: { ...host, 'content-type': 'application/json' }, body: JSON.stringify({ host: 'b', admin: true }) })
  t.equal(extra.status, 400)
  const badExpiry = await raw(port, { method: 'POST', path: '/api/links', headers: { ...host, 'content-type': 'application/json' }, body: JSON.stringify({ host: 'b', expires: '5y' }) })
  t.equal(badExpiry.status, 400)
  t.same(badExpiry.body, { error: { code: 'PL_ERR_USAGE', message: 'invalid duration "5y" (use e.g. 30m, 24h, 7d)' } })
  const unknown = await raw(port, { path: '/api/secrets', headers: host })
  t.equal(unknown.status, 404)
  t.equal(requests.length, 0, 'nothing reached the relay')
})

t.test('a non-loopback inspect address is refused', async (t) => {
  const server = new InspectServer({ host: '0.0.0.0', port: 0 }, { status: () => null, request: async () => null, log: memoryLogger().log })
  await t.rejects(server.listen(), { code: 'PL_ERR_CONFIG_INSECURE' })
})

t.test('callInspect: answers, API errors keep their code, nothing listening -> PL_ERR_AGENT_NOT_RUNNING', async (t) => {
  const { address } = await startInspect(t)
  t.same(await callInspect(address, 'GET', '/api/status'), { connected: true, tunnels: [] })
  await t.rejects(callInspect(address, 'DELETE', '/api/links/missing'), { code: 'PL_ERR_NOT_FOUND', message: 'link missing not found' })
  const other = new InspectServer({ host: '127.0.0.1', port: 0 }, { status: () => null, request: async () => null, log: memoryLogger().log })
  const port = (await other.listen()).port
  await other.close()
  await t.rejects(callInspect({ host: '127.0.0.1', port }, 'GET', '/api/status'), {
    code: 'PL_ERR_AGENT_NOT_RUNNING', message: `no agent is running (nothing answers on 127.0.0.1:${port})`,
  })
})

t.test('statusForError table', async (t) => {
  const table: Array<[unknown, number]> = [
    [new PorchlightError('PL_ERR_LINK_LOST', ['x']), 503],
    [new PorchlightError('PL_ERR_LINK_TIMEOUT', ['x', 1]), 503],
    [new PorchlightError('PL_ERR_NOT_FOUND', ['x']), 404],
    [new PorchlightError('PL_ERR_HTTP_BAD_REQUEST', ['x']), 400],
    [new PorchlightError('PL_ERR_PROTO_BAD_MESSAGE', ['x']), 400],
    [new PorchlightError('PL_ERR_USAGE', ['x']), 400],
    [new PorchlightError('PL_ERR_POLICY_HOST_DENIED', ['x']), 502],
    [new Error('boom'), 500],
  ]
  for (const [err, status] of table) t.equal(statusForError(err), status, (err as Error).message)
})
