import t from 'tap'
import { Registry } from 'prom-client'
import { LabelFolder, OTHER_LABEL } from '../../src/admin/label-fold.js'
import { HttpMeters, createMetrics } from '../../src/admin/metrics.js'

t.test('values past the cap fold into "other"; kept values stay themselves', t => {
  const folder = new LabelFolder(3)
  t.same(['a', 'b', 'c', 'd', 'a', 'e', 'c'].map((v) => folder.fold(v)), ['a', 'b', 'c', OTHER_LABEL, 'a', OTHER_LABEL, 'c'])
  t.equal(folder.size, 3)
  t.end()
})

t.test('a released value gives its slot to the next new value', t => {
  const folder = new LabelFolder(2)
  folder.fold('a')
  folder.fold('b')
  t.equal(folder.fold('c'), OTHER_LABEL)
  folder.release('a')
  t.equal(folder.fold('c'), 'c')
  t.equal(folder.fold('a'), OTHER_LABEL, 'a has to wait for a slot now')
  t.same(folder.values().sort(), ['b', 'c'])
  t.end()
})

t.test('the cap must be a positive integer', t => {
  t.throws(() => new LabelFolder(0), RangeError)
  t.throws(() => new LabelFolder(1.5), RangeError)
  t.end()
})

t.test('HTTP series: 10,000 hosts give at most cap + 1 host labels', async t => {
  const registry = new Registry()
  const meters = new HttpMeters([registry], new LabelFolder(10), () => 0, { hostCap: 200 })
  for (let i = 0; i < 10_000; i++) meters.forRoute({ agent: 'laptop', host: `h${i}.example` }).finish(200, 0.01, 1, 2, 0)
  const text = await registry.getSingleMetricAsString('porchlight_http_host_requests_total')
  const hosts = new Set([...text.matchAll(/host="([^"]+)"/g)].map((m) => m[1]))
  t.equal(hosts.size, 201, '200 hosts and "other"')
  t.ok(hosts.has(OTHER_LABEL))
  t.match(text, /porchlight_http_host_requests_total\{agent="laptop",host="other",status_class="2xx"\} 9800/)
  t.equal(meters.hostLabels, 200)
})

t.test('HTTP series: a host idle past idleMs is removed to make room for a new one', async t => {
  const registry = new Registry()
  let now = 0
  const meters = new HttpMeters([registry], new LabelFolder(10), () => now, { hostCap: 2, idleMs: 60_000 })
  meters.forRoute({ agent: 'a', host: 'old.example' }).finish(200, 0.01, 0, 0, now)
  now = 50_000
  meters.forRoute({ agent: 'a', host: 'busy.example' }).finish(404, 0.01, 0, 0, now)
  now = 70_000
  const fresh = meters.forRoute({ agent: 'a', host: 'new.example' })
  t.equal(fresh.host, 'new.example', 'old.example was idle for 70 s and gave its slot up')
  fresh.finish(200, 0.01, 0, 0, now)
  const text = await registry.getSingleMetricAsString('porchlight_http_host_requests_total')
  t.notMatch(text, /old\.example/)
  t.match(text, /host="busy\.example",status_class="4xx"\} 1/)
  t.match(text, /host="new\.example",status_class="2xx"\} 1/)
})

t.test('a route keeps its meter; status classes, bytes and the duration histogram', async t => {
  const metrics = createMetrics({ sessions: () => [{ agent: 'laptop', mux: { streamCount: 3 } }, { agent: 'laptop', mux: { streamCount: 1 } }] })
  const route = { agent: 'laptop', host: 'blog.example' }
  const meter = metrics.http.forRoute(route)
  t.equal(metrics.http.forRoute(route), meter, 'cached on the route object')
  for (const status of [200, 201, 304, 404, 502, 101, 999]) meter.finish(status, 0.2, 10, 100, 0)
  const text = await metrics.registry.metrics()
  t.match(text, /porchlight_http_host_requests_total\{agent="laptop",host="blog.example",status_class="2xx"\} 2/)
  t.match(text, /status_class="5xx"\} 2/, '5xx and an impossible 999')
  t.match(text, /porchlight_http_bytes_total\{agent="laptop",host="blog.example",direction="out"\} 700/)
  t.match(text, /porchlight_http_request_duration_seconds_bucket\{le="0.25",agent="laptop",host="blog.example"\} 7/)
  t.match(text, /porchlight_agent_sessions\{agent="laptop"\} 2/)
  t.match(text, /porchlight_agent_streams\{agent="laptop"\} 4/)
  t.match(text, /porchlight_agents_connected 2/)
})

t.test('TCP and forward series; limit refusals and auth failures by name', async t => {
  const metrics = createMetrics({ sessions: () => [] })
  const close = metrics.tcp.opened('laptop', 2222)
  metrics.tcp.opened('laptop', 2222)
  close(100, 2000)
  close(100, 2000)
  metrics.forwards.result('laptop', 'ok')
  metrics.forwards.result('laptop', 'denied')
  metrics.forwards.closed('laptop', 5, 7)
  metrics.limitRefused('tcp_max_connections')
  metrics.authFailed('bad_token')
  metrics.reconnected('laptop')
  const text = await metrics.registry.metrics()
  t.match(text, /porchlight_tcp_connections_total\{agent="laptop",port="2222"\} 2/)
  t.match(text, /porchlight_tcp_connections_active\{agent="laptop",port="2222"\} 1/, 'closing twice counts once')
  t.match(text, /porchlight_tcp_bytes_total\{agent="laptop",port="2222",direction="out"\} 2000/)
  t.match(text, /porchlight_forward_connections_total\{agent="laptop",result="denied"\} 1/)
  t.match(text, /porchlight_forward_bytes_total\{agent="laptop",direction="in"\} 5/)
  t.match(text, /porchlight_limit_refusals_total\{limit="tcp_max_connections"\} 1/)
  t.match(text, /porchlight_agent_auth_failures_total\{reason="bad_token"\} 1/)
  t.match(text, /porchlight_agent_reconnects_total\{agent="laptop"\} 1/)
})
