// The agent's request inspector driven in a real browser (Debian's chromium through
// playwright-core): the live list, the detail view, replay against the local server, and the
// two browser-borne attacks it must refuse (DNS rebinding, a cross-site replay).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { ROOT, startAgent, startRelay, type AgentProcess } from './harness/processes.js'
import { pollUntil } from './harness/wait.js'
import { visit } from './harness/visitor.js'

const CHROMIUM = '/usr/bin/chromium'
const ARTIFACTS = process.env['PORCHLIGHT_E2E_ARTIFACTS'] ?? join(ROOT, 'test/e2e/artifacts/inspector')
/** Generous: a loaded 2-core CI starts chromium and renders slowly. */
const UI_TIMEOUT_MS = 30_000

if (!existsSync(CHROMIUM)) {
  t.plan(0, `${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)`)
  process.exit(0)
}

const { chromium } = await import('playwright-core')

/** 1x1 PNG. */
const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000' + '1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a2d9bd5b0000000049454e44ae426082', 'hex')

const origin = await startHttpOrigin(t, {
  '/pixel.png': (_req, res) => {
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': PNG.length })
    res.end(PNG)
  },
  '/foreign': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' })
    res.end('<!doctype html><title>another site</title><p>a page on another origin</p>')
  },
})
const relay = await startRelay(t)
const agent = await startAgent(t, relay, {
  tunnels: [{ http: 'echo', to: origin.url }],
  extra: { inspect: '127.0.0.1:0', inspect_capture: { requests: 60, bytes: '2MiB' } },
})
const inspectUrl = inspectorUrl(agent)
const inspectPort = Number(new URL(inspectUrl).port)

mkdirSync(ARTIFACTS, { recursive: true })
const profile = mkdtempSync(join(tmpdir(), 'porchlight-chromium-'))
t.teardown(() => rmSync(profile, { recursive: true, force: true }))
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync',
    // A name that resolves to the inspector's address: what DNS rebinding achieves.
    '--host-resolver-rules=MAP rebind.example 127.0.0.1',
  ],
  viewport: { width: 1400, height: 900 },
  timeout: UI_TIMEOUT_MS,
})
t.teardown(() => context.close())
context.setDefaultTimeout(UI_TIMEOUT_MS)
const page = await context.newPage()
const consoleErrors: string[] = []
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()) })

t.test('the list updates live as requests pass through the relay', async (t) => {
  await page.goto(inspectUrl)
  await page.locator('#live', { hasText: 'live' }).waitFor()
  const body = JSON.stringify({ name: 'porch', items: [1, 2, 3] })
  const res = await visit(relay.publicPort, { host: 'echo.localhost', path: '/hello?via=relay', method: 'POST', headers: { 'content-type': 'application/json', 'x-custom': 'seen-in-inspector' }, body })
  t.equal(res.status, 200)
  const row = page.locator('#list tbody tr', { hasText: '/hello?via=relay' })
  await row.locator('td.status', { hasText: '200' }).waitFor()
  t.equal(await row.locator('td.method').textContent(), 'POST')
  t.equal(await row.locator('td.tunnel').textContent(), 'echo')
  await page.screenshot({ path: join(ARTIFACTS, '1-list.png') })
})

t.test('the detail shows headers and bodies (JSON pretty-printed, images shown)', async (t) => {
  await page.locator('#list tbody tr', { hasText: '/hello?via=relay' }).click()
  await page.locator('#req-headers', { hasText: 'seen-in-inspector' }).waitFor()
  t.match(await page.locator('#req-headers').textContent(), /x-forwarded-for/i, 'relay-set headers as the agent received them')
  t.match(await page.locator('#req-body pre').textContent(), /"name": "porch",\n {2}"items": \[/, 'request JSON pretty-printed')
  await page.locator('#orig-res-body pre', { hasText: '"url": "/hello?via=relay"' }).waitFor()
  t.match(await page.locator('#orig-res-headers').textContent(), /content-type/i)
  await page.screenshot({ path: join(ARTIFACTS, '2-detail.png') })

  t.equal((await visit(relay.publicPort, { host: 'echo.localhost', path: '/pixel.png' })).status, 200)
  await page.locator('#list tbody tr', { hasText: '/pixel.png' }).locator('td.status', { hasText: '200' }).waitFor()
  await page.locator('#list tbody tr', { hasText: '/pixel.png' }).click()
  await page.locator('#orig-res-body img').waitFor()
  const loaded = await page.locator('#orig-res-body img').evaluate((img) => { const i = img as unknown as { complete: boolean; naturalWidth: number }; return i.complete && i.naturalWidth === 1 })
  t.ok(loaded, 'the PNG body is rendered as an image')
})

t.test('filters narrow the list', async (t) => {
  await page.fill('#f-text', 'pixel')
  await waitRows((n) => n === 1)
  t.match(await page.locator('#list tbody tr td.path').textContent(), /pixel/)
  await page.fill('#f-text', '')
  await page.selectOption('#f-status', '5xx')
  await waitRows((n) => n === 0)
  await page.selectOption('#f-status', '')
  await waitRows((n) => n >= 2)
  t.pass('text and status filters applied')
})

t.test('replay (edited) reaches the local server and its answer is shown beside the original', async (t) => {
  await page.locator('#list tbody tr', { hasText: '/hello?via=relay' }).click()
  await page.locator('#replay-path').waitFor()
  const before = origin.requests.length
  await page.fill('#replay-path', '/replayed?edited=1')
  await page.fill('#replay-body', '{"edited":true}')
  await page.click('#replay-send-edited')
  await page.locator('#compare #replay-status', { hasText: '200' }).waitFor()
  const seen = await pollUntil(async () => origin.requests.slice(before), (r) => r.some((x) => x.url === '/replayed?edited=1'), { timeoutMs: 10_000 })
  t.ok(seen.ok, 'the origin recorded the replayed request')
  const replayed = seen.value.find((x) => x.url === '/replayed?edited=1')
  t.equal(replayed?.method, 'POST')
  t.equal(replayed?.headers['x-custom'], 'seen-in-inspector', 'captured headers were sent again')
  t.match(await page.locator('#compare #replay-res-body').textContent(), /\/replayed\?edited=1/, 'the replay answer is shown')
  t.match(await page.locator('#compare .orig-cmp-response').textContent(), /\/hello\?via=relay/, 'beside the original answer')
  await page.locator('#list tbody tr.replay', { hasText: '/replayed?edited=1' }).waitFor()
  await page.locator('#compare').scrollIntoViewIfNeeded()
  await page.screenshot({ path: join(ARTIFACTS, '3-replay.png') })
})

t.test('DNS rebinding: a foreign Host gets 403 (browser and raw request)', async (t) => {
  const other = await context.newPage()
  t.teardown(() => other.close())
  const res = await other.goto(`http://rebind.example:${inspectPort}/`)
  t.equal(res?.status(), 403, 'the page under a foreign name is refused')
  t.notMatch(await other.content(), /porchlight-token/, 'and the token is not in the answer')
  for (const path of ['/', '/api/requests', '/api/token', '/api/events']) {
    t.equal((await raw(inspectPort, 'GET', path, { host: `evil.example:${inspectPort}` })).status, 403, `GET ${path}`)
  }
})

t.test('a cross-origin replay without the token is refused and never reaches the origin', async (t) => {
  const list = JSON.parse((await raw(inspectPort, 'GET', '/api/requests')).body) as { requests: Array<{ id: string; path: string }> }
  const target = list.requests.find((r) => r.path === '/hello?via=relay')!
  // Replays of this entry reach the echo route with its path; count those (chromium also asks the foreign site for a favicon).
  const replays = (): number => origin.requests.filter((r) => r.url === '/hello?via=relay').length
  const before = replays()
  const foreign = await context.newPage()
  t.teardown(() => foreign.close())
  // The dev server being shared is another loopback origin: exactly the page that must not replay.
  await foreign.goto(`${origin.url}/foreign`)
  const outcome = await foreign.evaluate(async ({ url }) => {
    const results: string[] = []
    try {
      const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
      results.push(`cors:${r.status}`)
    } catch { results.push('cors:blocked') }
    try {
      await fetch(url, { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: '{}' })
      results.push('no-cors:sent')
    } catch { results.push('no-cors:blocked') }
    return results
  }, { url: `${inspectUrl}api/requests/${target.id}/replay` })
  t.same(outcome[0], 'cors:blocked', 'the JSON replay fails its preflight')
  t.equal(replays(), before, `the origin saw no replay (${outcome.join(', ')})`)
  // The same refusals without a browser: no token, wrong token, right token from another origin.
  const path = `/api/requests/${target.id}/replay`
  const json = { 'content-type': 'application/json' }
  t.equal((await raw(inspectPort, 'POST', path, json, '{}')).status, 403, 'no token')
  t.equal((await raw(inspectPort, 'POST', path, { ...json, 'x-porchlight-token': 'guess' }, '{}')).status, 403, 'wrong token')
  const token = (JSON.parse((await raw(inspectPort, 'GET', '/api/token')).body) as { token: string }).token
  t.equal((await raw(inspectPort, 'POST', path, { ...json, 'x-porchlight-token': token, origin: origin.url }, '{}')).status, 403, 'token but another origin')
  t.equal((await raw(inspectPort, 'DELETE', '/api/requests', {})).status, 403, 'clear without the token')
  t.equal(replays(), before, 'still no replay at the origin')
  const ok = await raw(inspectPort, 'POST', path, { ...json, 'x-porchlight-token': token }, '{}')
  t.equal(ok.status, 201, 'with the token, same origin: replayed')
  const arrived = await pollUntil(async () => replays(), (n) => n === before + 1, { timeoutMs: 10_000 })
  t.ok(arrived.ok, 'the origin recorded that one replay')
})

t.test('memory stays within inspect_capture after many requests (sanity)', async (t) => {
  const agents = 8
  let next = 0
  await Promise.all(Array.from({ length: agents }, async () => {
    while (next < 240) {
      const i = next++
      const res = await visit(relay.publicPort, { host: 'echo.localhost', path: `/bytes/${100_000 + i}` })
      if (res.status !== 200) throw new Error(`request ${i}: ${res.status}`)
    }
  }))
  const state = await pollUntil(async () => JSON.parse((await raw(inspectPort, 'GET', '/api/requests')).body) as { stored: number; bytes: number; requests: Array<{ state: string }> },
    (s) => s.requests.every((r) => r.state !== 'pending'), { timeoutMs: 10_000 })
  t.ok(state.value.stored <= 60, `${state.value.stored} entries kept (limit 60)`)
  t.ok(state.value.bytes <= 2 * 1024 * 1024, `${state.value.bytes} bytes kept (limit 2 MiB)`)
  const status = JSON.parse((await raw(inspectPort, 'GET', '/api/status')).body) as { tunnels: Array<{ traffic?: { requests: number; byStatus: Record<string, number> } }> }
  t.ok((status.tunnels[0]?.traffic?.requests ?? 0) >= 242, 'per-tunnel counters count every visitor request')
  await page.screenshot({ path: join(ARTIFACTS, '4-after-load.png') })
  t.same(consoleErrors.filter((e) => !/403|Forbidden/.test(e)), [], 'no script errors on the page')
  t.comment(`screenshots in ${ARTIFACTS}`)
})

/** Waits (bounded) until the number of list rows satisfies want; polled from here, the page's CSP forbids eval. */
async function waitRows(want: (n: number) => boolean): Promise<void> {
  const rows = page.locator('#list tbody tr')
  const r = await pollUntil(() => rows.count(), want, { timeoutMs: UI_TIMEOUT_MS, intervalMs: 50 })
  if (!r.ok) throw new Error(`list rows: ${r.value}`)
}

function inspectorUrl(a: AgentProcess): string {
  const line = a.logs().find((l) => l['msg'] === 'status API listening')
  if (line === undefined) throw new Error(`no "status API listening" line:\n${a.stderr()}`)
  return `http://${String(line['inspect'])}/`
}

function raw(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers }, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = []
      if (path === '/api/events' && res.statusCode === 200) {
        res.destroy()
        resolve({ status: 200, body: '' })
        return
      }
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }))
    })
    req.on('error', reject)
    req.end(body)
  })
}
