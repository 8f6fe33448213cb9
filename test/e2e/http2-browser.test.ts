// Issue 12: a dev-server-like page with 300 ES module requests, loaded in headless Chromium through
// the tunnel over HTTP/2 and over HTTP/1.1 (--disable-http2). Asserts every module ran and which
// protocol carried them; prints both load times (machines are noisy: no speed assertion).
import { mkdtempSync } from 'node:fs'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { initPki, issueSiteCert } from './harness/pki.js'
import { splitHostPort } from './harness/ports.js'
import { RelayProcess, startAgent } from './harness/processes.js'

const CHROMIUM = '/usr/bin/chromium'
const MODULES = 300

/** The bit of the DOM the in-page code reads (the test's tsconfig has no DOM lib). */
interface PageDom {
  document: { title: string }
  performance: { getEntriesByType(type: string): Array<{ name: string; nextHopProtocol: string }> }
}

if (!existsSync(CHROMIUM)) {
  t.plan(0, `${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)`)
} else {
  const { chromium } = await import('playwright-core')
  const pki = await initPki(t)
  const siteCert = await issueSiteCert(pki, ['modules.localhost'])
  const imports = Array.from({ length: MODULES }, (_, i) => `import m${i} from '/m/${i}.js'`).join('\n')
  const sum = Array.from({ length: MODULES }, (_, i) => `m${i}`).join(' + ')
  const modules = Object.fromEntries(Array.from({ length: MODULES }, (_, i) => [`/m/${i}.js`, (_req: unknown, res: { setHeader(n: string, v: string): void; end(b: string): void }) => {
    res.setHeader('content-type', 'text/javascript')
    res.end(`export default ${i}\n`)
  }]))
  const origin = await startHttpOrigin(t, {
    ...modules,
    '/': (_req, res) => {
      res.setHeader('content-type', 'text/html')
      res.end(`<!doctype html><title>loading</title><script type="module" src="/main.js"></script>`)
    },
    '/main.js': (_req, res) => {
      res.setHeader('content-type', 'text/javascript')
      res.end(`${imports}\ndocument.title = 'sum ' + (${sum})\n`)
    },
  })
  const relay = new RelayProcess(t, {})
  relay.config.listen.public_tls = { address: '127.0.0.1:0', certs: [siteCert] }
  await relay.start()
  const port = splitHostPort(relay.publicTls ?? '').port
  await startAgent(t, relay, { tunnels: [{ http: 'modules', to: origin.url }] })
  const expected = `sum ${(MODULES * (MODULES - 1)) / 2}`

  for (const [label, extra, protocol] of [['h2', [], 'h2'], ['h1', ['--disable-http2'], 'http/1.1']] as Array<[string, string[], string]>) {
    t.test(`${MODULES} modules over ${label}`, async t => {
      const profile = mkdtempSync(join(tmpdir(), 'porchlight-chromium-'))
      const context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        ignoreHTTPSErrors: true, // throwaway test CA
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...extra],
      })
      t.teardown(() => context.close())
      const page = context.pages()[0] ?? await context.newPage()
      page.setDefaultTimeout(30_000)
      const started = Date.now()
      await page.goto(`https://modules.localhost:${port}/`)
      await page.waitForFunction((want) => (globalThis as unknown as PageDom).document.title === want, expected)
      const ms = Date.now() - started
      t.comment(`${MODULES} modules over ${label}: ${ms} ms`)
      const protocols = await page.evaluate(() => (globalThis as unknown as PageDom).performance.getEntriesByType('resource').map(e => e.nextHopProtocol))
      // Chromium keeps 250 resource-timing entries by default; the title proves all 300 ran.
      t.equal(protocols.length, 250, 'a full resource-timing buffer of fetches')
      t.same([...new Set(protocols)], [protocol], `all over ${protocol}`)
      t.equal(await page.title(), expected, 'every module ran')
    })
  }
}
