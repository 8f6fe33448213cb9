import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { BODY_CAPTURE_BYTES, CaptureStore } from '../../src/inspector/capture.js'
import { TrafficMonitor } from '../../src/inspector/traffic.js'

const headers: Array<[string, string]> = [
  ['host', 'blog.tunnel.example.com'], ['user-agent', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36'],
  ['accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'], ['cookie', 'session=' + 'x'.repeat(200)],
  ['x-forwarded-for', '203.0.113.9'], ['x-forwarded-proto', 'https'], ['x-forwarded-host', 'blog.tunnel.example.com'],
]

/** One visitor exchange through the monitor: a request body and a response body in 16 KiB chunks. */
function exchange(monitor: TrafficMonitor, i: number, requestBytes: number, responseBytes: number): void {
  const probe = monitor.begin({ tunnel: 'blog', host: 'blog.tunnel.example.com', method: 'POST', path: `/api/items/${i}?q=${'a'.repeat(40)}`, headers })
  const chunk = Buffer.alloc(16 * 1024, i & 0xff)
  for (let n = 0; n < requestBytes; n += chunk.length) probe.requestBody(chunk.subarray(0, Math.min(chunk.length, requestBytes - n)))
  probe.response(200, 'OK', [['content-type', 'application/json'], ['content-length', String(responseBytes)], ['date', new Date().toUTCString()]])
  for (let n = 0; n < responseBytes; n += chunk.length) probe.responseBody(chunk.subarray(0, Math.min(chunk.length, responseBytes - n)))
  probe.end()
}

t.test('bounded by count: the newest N stay, newest first', async (t) => {
  const store = new CaptureStore({ requests: 5, bytes: 1 << 30 })
  const monitor = new TrafficMonitor(store)
  for (let i = 0; i < 12; i++) exchange(monitor, i, 10, 10)
  t.equal(store.size, 5)
  t.same(store.list().map((e) => e.id), ['12', '11', '10', '9', '8'])
  t.equal(store.get('1'), undefined)
  const d = store.get('12')!.detail()
  t.equal(d.status, 200)
  t.equal(d.state, 'complete')
  t.equal(d.request.body.bytes, 10)
  t.equal(Buffer.from(d.request.body.base64, 'base64').length, 10)
  t.equal(monitor.traffic('blog').requests, 12)
  t.equal(monitor.traffic('blog').byStatus['2xx'], 12)
  t.equal(monitor.traffic('blog').open, 0)
})

t.test('bodies are cut at 64 KiB and counted in full', async (t) => {
  const store = new CaptureStore({ requests: 10, bytes: 1 << 30 })
  exchange(new TrafficMonitor(store), 1, 200_000, 70_000)
  const d = store.list()[0]!.detail()
  t.equal(d.request.body.bytes, 200_000)
  t.equal(d.request.body.truncated, true)
  t.equal(Buffer.from(d.request.body.base64, 'base64').length, BODY_CAPTURE_BYTES)
  t.equal(d.response!.body.bytes, 70_000)
  t.equal(Buffer.from(d.response!.body.base64, 'base64').length, BODY_CAPTURE_BYTES)
})

t.test('requests: 0 records nothing but still counts', async (t) => {
  const store = new CaptureStore({ requests: 0, bytes: 1 << 20 })
  const monitor = new TrafficMonitor(store)
  exchange(monitor, 1, 10, 10)
  t.equal(store.size, 0)
  t.equal(monitor.traffic('blog').requests, 1)
})

t.test('failures are counted as errors, by class otherwise; listeners see start and end', async (t) => {
  const store = new CaptureStore({ requests: 10, bytes: 1 << 20 })
  const monitor = new TrafficMonitor(store)
  const seen: string[] = []
  store.subscribe((s) => seen.push(s === null ? 'clear' : `${s.id}:${s.state}`))
  const lines: number[] = []
  monitor.onLine((l) => lines.push(l.status))
  const a = monitor.begin({ tunnel: 'x', host: 'h', method: 'GET', path: '/', headers: [] })
  a.end({ code: 'PL_ERR_HTTP_ORIGIN_UNREACHABLE', message: 'down' })
  const b = monitor.begin({ tunnel: 'x', host: 'h', method: 'GET', path: '/', headers: [] })
  b.response(404, 'Not Found', [])
  b.end()
  t.same(monitor.traffic('x').errors, 1)
  t.same(monitor.traffic('x').byStatus['4xx'], 1)
  t.same(lines, [0, 404])
  store.clear()
  t.same(seen, ['1:pending', '1:failed', '2:pending', '2:complete', 'clear'])
})

t.test('10,000 real-sized requests stay within the byte bound (accounting and heap)', async (t) => {
  const limit = 32 * 1024 * 1024
  const store = new CaptureStore({ requests: 500, bytes: limit })
  const monitor = new TrafficMonitor(store)
  // A real collection before each measure, so the number is what the buffer holds, not garbage.
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  gc()
  const before = process.memoryUsage()
  let peak = 0
  for (let i = 0; i < 10_000; i++) {
    // Mixed sizes: small JSON calls, form posts, and large downloads (cut at 64 KiB).
    const kind = i % 4
    exchange(monitor, i, kind === 1 ? 120_000 : 300, kind === 2 ? 2_000_000 : kind === 3 ? 70_000 : 1_500)
    peak = Math.max(peak, store.bytes)
  }
  t.ok(store.size <= 500, `${store.size} entries kept`)
  t.ok(peak <= limit, `accounted bytes never above the bound (peak ${peak})`)
  // Buffers' backing stores are freed after a collection's finalizers run: collect a few times, with
  // turns of the event loop in between, before reading the numbers.
  for (let i = 0; i < 4; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  const after = process.memoryUsage()
  const grown = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers)
  t.comment(`kept ${store.size} entries, ${(store.bytes / 1048576).toFixed(1)} MiB accounted, heap+buffers grew ${(grown / 1048576).toFixed(1)} MiB`)
  // Real memory follows the accounting (allowing for V8's own overhead and a not-yet-collected heap).
  t.ok(grown < limit + 8 * 1024 * 1024, `heap + buffers grew ${(grown / 1048576).toFixed(1)} MiB (bound 32 MiB)`)
  t.equal(monitor.traffic('blog').requests, 10_000)
})

t.test('the byte bound evicts before the count bound when entries are large', async (t) => {
  const limit = 2 * 1024 * 1024
  const store = new CaptureStore({ requests: 10_000, bytes: limit })
  const monitor = new TrafficMonitor(store)
  let peak = 0
  for (let i = 0; i < 10_000; i++) {
    exchange(monitor, i, 100_000, 100_000)
    peak = Math.max(peak, store.bytes)
  }
  t.ok(peak <= limit, `peak ${peak} <= ${limit}`)
  t.ok(store.size > 5 && store.size < 20, `${store.size} entries of ~128 KiB fit`)
  t.equal(store.list()[0]!.id, '10000', 'the newest is kept')
})
