import t from 'tap'
import { renderPage } from '../../src/visitors/pages.js'

t.test('error pages: HTML for browsers, text otherwise, never internals (SECURITY B16)', async (t) => {
  const html = renderPage('PL_ERR_HTTP_TUNNEL_OFFLINE', 'text/html,application/xhtml+xml')
  t.equal(html.status, 503)
  t.match(html.type, /text\/html/)
  t.match(html.body, /tunnel offline/)
  const text = renderPage('PL_ERR_HTTP_UNKNOWN_HOST', '*/*')
  t.equal(text.status, 404)
  t.equal(text.body, '404 Not found: no tunnel for this host (PL_ERR_HTTP_UNKNOWN_HOST)\n')
  for (const code of ['PL_ERR_HTTP_ORIGIN_UNREACHABLE', 'PL_ERR_HTTP_ORIGIN_TIMEOUT', 'PL_ERR_HTTP_BAD_REQUEST'] as const) {
    const page = renderPage(code, undefined)
    t.notMatch(page.body, /127\.0\.0\.1|\/home|\/work|at .*\.js|node:/, `${code} leaks nothing`)
  }
  t.equal(renderPage('PL_ERR_HTTP_ORIGIN_TIMEOUT', undefined).status, 504)
  t.equal(renderPage('PL_ERR_HTTP_ORIGIN_UNREACHABLE', undefined).status, 502)
})
