// Issue 13: a real Prometheus (Debian's `prometheus`) scrapes the relay's /metrics with the admin
// token, and PromQL through its HTTP API returns the counts of known traffic: 7 requests answered
// 200 and 3 answered 404 on one published host, each in the host's own series.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ChildHandle } from './harness/child.js'
import { startHttpOrigin } from './harness/origins.js'
import { freePort } from './harness/ports.js'
import { ROOT, startAgent, startRelay } from './harness/processes.js'
import { visit } from './harness/visitor.js'
import { pollUntil } from './harness/wait.js'
import { childDir } from './harness/workdir.js'

const PROMETHEUS = '/usr/bin/prometheus'
const HOST = 'shop.localhost'

if (!existsSync(PROMETHEUS)) {
  t.plan(0, `${PROMETHEUS} is missing (apt-get install prometheus; .ci/run installs it)`)
} else {
  const origin = await startHttpOrigin(t, {
    '/ok': (_req, res) => res.end('ok\n'),
    '/missing': (_req, res) => { res.statusCode = 404; res.end('no such page\n') },
  })
  const relay = await startRelay(t)
  await startAgent(t, relay, { tunnels: [{ http: 'shop', to: origin.url }] })

  t.test('PromQL through Prometheus returns the per-host counts of known traffic', { timeout: 90_000 }, async (t) => {
    const started = Date.now()
    for (let i = 0; i < 7; i++) t.equal((await visit(relay.publicPort, { host: HOST, path: '/ok' })).status, 200)
    for (let i = 0; i < 3; i++) t.equal((await visit(relay.publicPort, { host: HOST, path: '/missing' })).status, 404)
    t.equal((await visit(relay.publicPort, { host: 'nobody.localhost' })).status, 404, 'an unknown host: counted under host="-"')

    const dir = childDir(t, 'prometheus')
    const port = await freePort()
    writeFileSync(join(dir, 'admin-token'), relay.adminToken, { mode: 0o600 })
    writeFileSync(join(dir, 'prometheus.yml'), [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      'scrape_configs:',
      '  - job_name: porchlight-relay',
      '    metrics_path: /metrics',
      `    authorization: { type: Bearer, credentials_file: ${join(dir, 'admin-token')} }`,
      `    static_configs: [{ targets: ['127.0.0.1:${relay.adminPort}'] }]`,
      '',
    ].join('\n'))
    const prometheus = new ChildHandle(t, {
      label: 'prometheus',
      command: PROMETHEUS,
      args: [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: dir },
      cwd: dir,
    })
    const api = `http://127.0.0.1:${port}`
    const ready = await pollUntil(() => fetch(`${api}/-/ready`).then((r) => r.status, () => 0), (s) => s === 200, { timeoutMs: 30_000, intervalMs: 200 })
    t.ok(ready.ok, `Prometheus ready in ${ready.ms} ms`)

    async function query(promql: string): Promise<Record<string, number>> {
      const res = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(promql)}`).catch(() => null)
      if (res === null || res.status !== 200) return {}
      const body = (await res.json()) as { data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } }
      return Object.fromEntries(body.data.result.map((r) => [Object.values(r.metric).join(',') || 'value', Number(r.value[1])]))
    }

    const byClass = await pollUntil(
      () => query(`sum by (status_class) (porchlight_http_host_requests_total{job="porchlight-relay",agent="laptop",host="${HOST}"})`),
      (v) => v['2xx'] === 7 && v['4xx'] === 3,
      { timeoutMs: 30_000, intervalMs: 250 },
    )
    t.same({ '2xx': byClass.value['2xx'], '4xx': byClass.value['4xx'] }, { '2xx': 7, '4xx': 3 }, `2xx and 4xx per host, scraped and queried in ${byClass.ms} ms`)
    t.same(await query(`sum(porchlight_http_request_duration_seconds_count{host="${HOST}"})`), { value: 10 }, 'ten durations observed')
    t.same(await query(`sum(porchlight_http_requests_total{status="404"})`), { value: 4 }, 'relay-wide: 3 from the origin and 1 unknown host')
    t.same(await query(`sum(porchlight_http_host_requests_total{host="-"})`), { value: 1 }, 'the unknown host is not a label of its own')
    t.same(await query(`sum(porchlight_http_bytes_total{host="${HOST}",direction="out"})`), { value: 7 * 3 + 3 * 13 }, 'body bytes sent to visitors')
    t.same(await query('sum(porchlight_agent_sessions{agent="laptop"})'), { value: 1 })
    t.same(await query('sum(up{job="porchlight-relay"})'), { value: 1 }, 'the scrape with the bearer token succeeds')
    // Every query of the Grafana dashboard parses and names series the relay has.
    const grafana = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/porchlight.json'), 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> }
    for (const panel of grafana.panels) {
      for (const { expr } of panel.targets) {
        const promql = expr.replaceAll('$__rate_interval', '1m').replaceAll('$agent', '.*').replaceAll('$host', '.*')
        const res = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(promql)}`)
        t.equal(res.status, 200, `Grafana "${panel.title}": ${expr}`)
      }
    }
    t.comment(`whole test ${Date.now() - started} ms`)
    await prometheus.kill('SIGTERM')
  })
}
