// Issue 13: the relay dashboard driven in headless Chromium (Debian's `chromium` through
// playwright-core): a wrong token is refused, login sets an HttpOnly SameSite=Strict cookie, the
// connected agent and its traffic show up, "Disconnect" closes the relay's session, a POST without
// the page's CSRF token is refused, and logout ends the login. Screenshots are kept under
// .tap/artifacts/dashboard-browser/ (or $PORCHLIGHT_ARTIFACTS_DIR).
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { ROOT, startAgent, startRelay } from './harness/processes.js'
import { visit } from './harness/visitor.js'
import { pollUntil } from './harness/wait.js'

const CHROMIUM = '/usr/bin/chromium'

/** The bit of the DOM the in-page predicates use (the test's tsconfig has no DOM lib). */
interface PageDom {
  document: { cookie: string; querySelectorAll(selector: string): ArrayLike<{ dataset: Record<string, string | undefined> }> }
  fetch(url: string, init: object): Promise<{ status: number }>
}

const WAIT_MS = 15_000

if (!existsSync(CHROMIUM)) {
  t.plan(0, `${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)`)
} else {
  const { chromium } = await import('playwright-core')
  const artifacts = process.env['PORCHLIGHT_ARTIFACTS_DIR'] ?? join(ROOT, '.tap/artifacts/dashboard-browser')
  mkdirSync(artifacts, { recursive: true })
  const origin = await startHttpOrigin(t, { '/hello': (_req, res) => res.end('hello\n') })
  const relay = await startRelay(t)
  await startAgent(t, relay, { tunnels: [{ http: 'blog', to: origin.url }] })
  for (let i = 0; i < 5; i++) await visit(relay.publicPort, { host: 'blog.localhost', path: `/hello?n=${i}` })
  // (the access log and the dashboard show /hello?[redacted]: query strings are never kept)
  const admin = relay.adminUrl!

  const profile = mkdtempSync(join(tmpdir(), 'porchlight-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1200, height: 1000 },
  })
  t.teardown(() => context.close())
  const page = context.pages()[0] ?? await context.newPage()
  page.setDefaultTimeout(WAIT_MS)
  page.on('dialog', (d) => { void d.accept() })
  const shot = (name: string): Promise<Buffer> => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true })

  t.test('login: a wrong token is refused, the right one sets an HttpOnly SameSite=Strict cookie', async (t) => {
    await page.goto(`${admin}/`)
    await page.fill('#token', 'not-the-token')
    await Promise.all([page.waitForURL(`${admin}/login`), page.click('#login button')])
    t.match(await page.textContent('.error'), /not the admin token/)
    await page.fill('#token', relay.adminToken)
    await Promise.all([page.waitForURL(`${admin}/`), page.click('#login button')])
    await page.waitForSelector('#agents tbody tr[data-agent="laptop"]')
    const [cookie] = await context.cookies(admin)
    t.equal(cookie?.name, 'porchlight_admin')
    t.equal(cookie?.httpOnly, true)
    t.equal(cookie?.sameSite, 'Strict')
    t.notOk(JSON.stringify(await context.cookies()).includes(relay.adminToken), 'the admin token itself is not in a cookie')
    t.equal(await page.evaluate(() => (globalThis as unknown as PageDom).document.cookie), '', 'the page cannot read the cookie')
  })

  t.test('the page shows the agent, its tunnel, the traffic chart and the access log', async (t) => {
    const row = page.locator('#agents tbody tr[data-agent="laptop"]')
    t.match(await row.textContent(), /http:\/\/blog\.localhost:\d+\//)
    await page.waitForSelector('#traffic-chart polyline[data-host="blog.localhost"]')
    t.match(await page.textContent('#traffic-legend li[data-host="blog.localhost"]'), /blog\.localhost: 5 requests, 0 errors/)
    await page.waitForFunction(() => (globalThis as unknown as PageDom).document.querySelectorAll('#log tbody tr').length >= 5)
    t.match(await page.textContent('#log tbody'), /\/hello\?\[redacted\]200/, 'the tail shows the requests, query strings redacted')
    t.notMatch(await page.textContent('#log tbody'), /n=4/)
    await shot('1-dashboard')
  })

  t.test('a POST without the page\'s CSRF token is refused; so is one from another origin', async (t) => {
    const noToken = await page.evaluate(() => (globalThis as unknown as PageDom).fetch('/api/agents/laptop/disconnect', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }).then((r) => r.status))
    t.equal(noToken, 403, 'cookie alone: 403')
    const csrf = await page.getAttribute('meta[name="porchlight-csrf"]', 'content')
    const cookies = (await context.cookies(admin)).map((c) => `${c.name}=${c.value}`).join('; ')
    const foreign = await fetch(`${admin}/api/agents/laptop/disconnect`, { method: 'POST', headers: { cookie: cookies, 'x-porchlight-csrf': csrf ?? '', origin: 'http://evil.example', 'content-type': 'application/json' }, body: '{}' })
    t.equal(foreign.status, 403, 'right token, foreign Origin: 403')
    const wrong = await fetch(`${admin}/api/agents/laptop/disconnect`, { method: 'POST', headers: { cookie: cookies, 'x-porchlight-csrf': 'x'.repeat(43), 'content-type': 'application/json' }, body: '{}' })
    t.equal(wrong.status, 403, 'wrong token: 403')
    t.equal((await relay.connectedAgents()).length, 1, 'the agent is still connected')
  })

  t.test('Disconnect closes the relay\'s session for the agent', async (t) => {
    const [before] = await relay.connectedAgents()
    const row = page.locator(`#agents tbody tr[data-session="${before!.session}"]`)
    await row.locator('button.disconnect').click()
    await relay.waitForLog((l) => l['msg'] === 'agent disconnected by the operator' && l['session'] === before!.session, WAIT_MS, 'operator disconnect')
    const gone = await pollUntil(() => relay.connectedAgents(), (list) => !list.some((a) => a.session === before!.session), { timeoutMs: WAIT_MS })
    t.ok(gone.ok, `session ${before!.session} closed within ${gone.ms} ms`)
    // The agent reconnects on its own (backoff); the page follows without a reload.
    await page.waitForFunction((old) => {
      const rows = Array.from((globalThis as unknown as PageDom).document.querySelectorAll('#agents tbody tr[data-agent="laptop"]'))
      return rows.length > 0 && rows.every((r) => r.dataset['session'] !== old)
    }, before!.session, { timeout: 30_000 })
    t.pass('the page lists the new session')
    await shot('2-after-disconnect')
  })

  t.test('logout ends the login: the cookie no longer opens the API', async (t) => {
    const cookies = (await context.cookies(admin)).map((c) => `${c.name}=${c.value}`).join('; ')
    await Promise.all([page.waitForSelector('#login'), page.click('#logout')])
    await shot('3-logged-out')
    t.same(await context.cookies(admin), [], 'the browser dropped the cookie')
    const after = await fetch(`${admin}/api/agents`, { headers: { cookie: cookies } })
    t.equal(after.status, 401, 'the old session id is dead on the relay too')
  })
}
