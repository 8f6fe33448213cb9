// HTTP/2 for visitors (issue 12): ALPN h2 on the public HTTPS listener with HTTP/1.1 fallback, the
// same routing and access rules, HTTP/1.1 to the origin, and nghttp2's strict parse refusing
// smuggling and floods, each case asserting what the origin received and that others are served.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { initPki, issueSiteCert } from './harness/pki.js'
import { splitHostPort } from './harness/ports.js'
import { RelayProcess, runCli, startAgent } from './harness/processes.js'
import { childDir } from './harness/workdir.js'
import { FLAG, FRAME, RawH2, errorCodeOf, frame, headerBlock, requestHeaders } from './harness/h2-frames.js'

interface Run { code: number; stdout: string; stderr: string }
function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<Run> {
  return new Promise(resolve => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0
      resolve({ code, stdout, stderr })
    })
  })
}

async function have(cmd: string): Promise<boolean> {
  return (await run('sh', ['-c', `command -v ${cmd}`])).code === 0
}

const PROTOCOL_ERROR = 1

t.test('HTTP/2 visitors', async t => {
  if (!(await have('curl'))) return t.plan(0, 'curl is not installed')
  const pki = await initPki(t)
  const siteCert = await issueSiteCert(pki, ['h2.localhost', 'locked.localhost'])
  const completed: Record<string, number> = {}
  let hanging = 0 // requests to /hang the origin holds open (it never answers them)
  const origin = await startHttpOrigin(t, {
    '/peer': (req, res) => res.end(`${req.socket.remotePort}\n`),
    '/hang': (req) => {
      hanging++
      req.on('close', () => { hanging-- })
    },
    '/cl': (req, res) => {
      let bytes = 0
      req.on('data', (c: Buffer) => { bytes += c.length })
      req.on('end', () => { completed['/cl'] = (completed['/cl'] ?? 0) + 1; res.end(`got ${bytes}`) })
    },
  })
  const relay = new RelayProcess(t, {})
  relay.config.listen.public_tls = { address: '127.0.0.1:0', certs: [siteCert] }
  await relay.start()
  const port = splitHostPort(relay.publicTls ?? '').port
  const hashed = await runCli('agent', ['hash-password', '--password-stdin'], { input: 'pw-alice-123' })
  const basic = { user: 'alice', password_hash: hashed.stdout.trim() }
  await startAgent(t, relay, { tunnels: [{ http: 'h2', to: origin.url }, { http: 'locked', to: origin.url, access: { basic } }] })
  const url = (host: string, path: string): string => `https://${host}.localhost:${port}${path}`
  const resolve = (host: string): string[] => ['--resolve', `${host}.localhost:${port}:127.0.0.1`, '--cacert', pki.caCert]
  const dir = childDir(t, 'h2')

  t.test('curl --http2: HTTP/2 to the visitor, HTTP/1.1 with the site host to the origin', async t => {
    const res = await run('curl', ['-sS', '--http2', ...resolve('h2'), '-w', '\n%{http_version} %{http_code}', url('h2', '/hello?x=1')])
    t.equal(res.code, 0, res.stderr)
    const [body, meta] = res.stdout.split('\n')
    t.equal(meta, '2 200', 'HTTP/2, status 200')
    const seen = JSON.parse(body!) as { method: string; url: string; headers: Record<string, string>; httpVersion?: string }
    t.equal(seen.method, 'GET')
    t.equal(seen.url, '/hello?x=1')
    t.equal(seen.headers['x-forwarded-host'], 'h2.localhost', 'the relay routed on :authority')
    t.equal(seen.headers['x-forwarded-proto'], 'https')
    t.notOk(Object.keys(seen.headers).some(n => n.startsWith(':')), 'no pseudo-headers reach the origin')
  })

  t.test('curl --http1.1 on the same listener still gets HTTP/1.1', async t => {
    const res = await run('curl', ['-sS', '--http1.1', ...resolve('h2'), '-o', '/dev/null', '-w', '%{http_version} %{http_code}', url('h2', '/')])
    t.equal(res.stdout, '1.1 200')
  })

  t.test('a 1 MiB upload over h2 arrives whole (sha256)', async t => {
    const file = join(dir, 'upload.bin')
    const data = Buffer.alloc(1024 * 1024)
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff
    writeFileSync(file, data)
    const res = await run('curl', ['-sS', '--http2', ...resolve('h2'), '--data-binary', `@${file}`, url('h2', '/upload')])
    t.equal(res.code, 0, res.stderr)
    const body = JSON.parse(res.stdout) as { bytes: number; sha256: string }
    t.equal(body.bytes, data.length)
    t.equal(body.sha256, createHash('sha256').update(data).digest('hex'))
  })

  t.test('basic auth holds over h2', async t => {
    const before = origin.requestCount
    const denied = await run('curl', ['-sS', '--http2', ...resolve('locked'), '-o', '/dev/null', '-w', '%{http_version} %{http_code}', url('locked', '/')])
    t.equal(denied.stdout, '2 401')
    t.equal(origin.requestCount, before, 'the refused request never reached the origin')
    const allowed = await run('curl', ['-sS', '--http2', ...resolve('locked'), '-u', 'alice:pw-alice-123', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', url('locked', '/')])
    t.equal(allowed.stdout, '2 200')
  })

  t.test('nghttp: 20 concurrent streams on one connection', async t => {
    if (!(await have('nghttp'))) return t.plan(0, 'nghttp is not installed (apt-get install nghttp2-client)')
    const before = origin.requestCount
    const res = await run('nghttp', ['-n', '-s', '-m', '20', '-H', `:authority: h2.localhost:${port}`, `https://127.0.0.1:${port}/bytes/4096`])
    t.equal(res.code, 0, res.stderr)
    t.equal(origin.requestCount - before, 20, 'all 20 reached the origin')
    t.match(res.stdout, /responseEnd/, 'nghttp printed its stream statistics')
  })

  t.test('h2load: 2000 requests, 4 connections × 20 streams, all 2xx', async t => {
    if (!(await have('h2load'))) return t.plan(0, 'h2load is not installed (apt-get install nghttp2-client)')
    const res = await run('h2load', ['-n', '2000', '-c', '4', '-m', '20', '-H', `:authority: h2.localhost:${port}`, `https://127.0.0.1:${port}/bytes/1024`], 120_000)
    t.equal(res.code, 0, res.stderr)
    t.match(res.stdout, /status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx/)
    t.match(res.stdout, /Application protocol: h2/)
  })

  t.test('one h2 session reaches its local server over at most 6 connections, whatever its concurrency', async t => {
    if (!(await have('nghttp'))) return t.plan(0, 'nghttp is not installed (apt-get install nghttp2-client)')
    const res = await run('nghttp', ['-m', '30', '-H', `:authority: h2.localhost:${port}`, `https://127.0.0.1:${port}/peer`])
    t.equal(res.code, 0, res.stderr)
    const ports = res.stdout.match(/\d+/g) ?? []
    t.equal(ports.length, 30, 'all 30 answered')
    const distinct = new Set(ports).size
    t.comment(`30 concurrent requests used ${distinct} origin connection(s)`)
    t.ok(distinct >= 1 && distinct <= 6, 'the relay wrote them onto at most 6 connection streams (H2_ORIGIN_CONNECTIONS)')
  })

  t.test('an h2 upload without Content-Length reaches the origin whole, chunked', async t => {
    const h2 = await RawH2.connect(port, 'h2.localhost')
    t.teardown(() => h2.close())
    const body = Buffer.from('twelve bytes')
    h2.send(
      frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, headerBlock(requestHeaders(`h2.localhost:${port}`, '/upload', 'POST'))),
      frame(FRAME.DATA, 0, 1, body.subarray(0, 5)),
      frame(FRAME.DATA, FLAG.END_STREAM, 1, body.subarray(5)),
    )
    const data = await h2.waitFor(FRAME.DATA, 5000, 1)
    t.ok(data, 'answered')
    if (data) t.same(JSON.parse(data.payload.toString()), { bytes: 12, sha256: createHash('sha256').update(body).digest('hex') })
    const seen = origin.requests.find(r => r.url === '/upload' && r.bodyBytes === 12)
    t.equal(seen?.headers['transfer-encoding'], 'chunked', 'framed by the relay, never sent without framing')
  })

  // Another visitor is served; after a flood, within a bound (reset streams drain from the agent).
  const servesOthers = async (t: { equal: (found: unknown, wanted: unknown, message: string) => unknown; comment: (m: string) => void }, withinMs = 0): Promise<void> => {
    const started = Date.now()
    let res: Run
    do {
      res = await run('curl', ['-sS', '--http2', ...resolve('h2'), '-o', '/dev/null', '-w', '%{http_version} %{http_code}', url('h2', '/after')])
      if (res.stdout === '2 200') break
      await new Promise(r => setTimeout(r, 100))
    } while (Date.now() - started < withinMs)
    if (withinMs > 0) t.comment(`another visitor served after ${Date.now() - started} ms`)
    t.equal(res.stdout, '2 200', 'the relay still serves another visitor')
  }

  for (const [label, value] of [['CR/LF', 'a\r\nx-injected: 1'], ['NUL', 'a\0b'], ['a lone LF', 'a\nb']] as Array<[string, string]>) {
    t.test(`${label} in a header value never reaches the origin`, async t => {
      const h2 = await RawH2.connect(port, 'h2.localhost')
      t.teardown(() => h2.close())
      const path = `/evil-${label.length}`
      h2.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, headerBlock(requestHeaders(`h2.localhost:${port}`, path, 'GET', [['x-evil', value]]))))
      // nghttp2 drops the field (or resets the stream); either way nothing with it goes on.
      await Promise.race([h2.waitFor(FRAME.RST_STREAM, 3000, 1), h2.waitFor(FRAME.DATA, 3000, 1)])
      const seen = origin.requests.filter(r => r.url === path)
      t.ok(seen.length <= 1, 'at most the one request')
      t.notOk(seen.some(r => 'x-evil' in r.headers || 'x-injected' in r.headers), 'the field did not reach the origin')
      await servesOthers(t)
    })
  }

  for (const [label, extra] of [
    ['a connection-specific header', [['connection', 'keep-alive']]],
    ['transfer-encoding', [['transfer-encoding', 'chunked']]],
    ['an upper-case header name', [['X-Upper', '1']]],
    ['a host that disagrees with :authority', [['host', 'locked.localhost']]],
  ] as Array<[string, Array<[string, string]>]>) {
    t.test(`${label} is a malformed request: stream reset, nothing reaches the origin`, async t => {
      const before = origin.requestCount
      const h2 = await RawH2.connect(port, 'h2.localhost')
      t.teardown(() => h2.close())
      h2.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, headerBlock(requestHeaders(`h2.localhost:${port}`, '/evil', 'GET', extra))))
      const reset = await h2.waitFor(FRAME.RST_STREAM, 3000, 1)
      t.ok(reset, 'the relay reset the stream')
      if (reset) t.equal(errorCodeOf(reset), PROTOCOL_ERROR, 'PROTOCOL_ERROR')
      t.notOk(h2.frames.some(f => f.type === FRAME.HEADERS && f.stream === 1), 'no response head for it')
      t.equal(origin.requestCount, before, 'nothing reached the origin')
      await servesOthers(t)
    })
  }

  t.test('Content-Length larger than the DATA sent: reset, the origin never gets a complete body', async t => {
    const h2 = await RawH2.connect(port, 'h2.localhost')
    t.teardown(() => h2.close())
    h2.send(
      frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, headerBlock(requestHeaders(`h2.localhost:${port}`, '/cl', 'POST', [['content-length', '10']]))),
      frame(FRAME.DATA, FLAG.END_STREAM, 1, Buffer.from('12345')),
    )
    const reset = await h2.waitFor(FRAME.RST_STREAM, 3000, 1)
    t.ok(reset, 'stream reset')
    if (reset) t.equal(errorCodeOf(reset), PROTOCOL_ERROR)
    await new Promise(r => setTimeout(r, 300))
    t.equal(completed['/cl'] ?? 0, 0, 'no shorter body that looks complete reached the origin')
    await servesOthers(t)
  })

  /** CVE-2023-44487: 5,000 requests, each cancelled (RST_STREAM) right behind its HEADERS, in batches of 500. */
  const rapidReset = async (h2: RawH2, path: string): Promise<void> => {
    const block = headerBlock(requestHeaders(`h2.localhost:${port}`, path))
    const rst = Buffer.alloc(4)
    rst.writeUInt32BE(8) // CANCEL
    for (let batch = 0; batch < 10 && !h2.closed; batch++) {
      const frames: Buffer[] = []
      for (let i = 0; i < 500; i++) {
        const id = 1 + 2 * (batch * 500 + i)
        frames.push(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, block), frame(FRAME.RST_STREAM, 0, id, rst))
      }
      h2.send(...frames)
      await new Promise(r => setTimeout(r, 10))
    }
  }

  t.test('rapid reset (CVE-2023-44487): the session is ended with GOAWAY', async t => {
    const before = origin.requestCount
    const h2 = await RawH2.connect(port, 'h2.localhost')
    t.teardown(() => h2.close())
    await rapidReset(h2, '/bytes/16')
    const goaway = await h2.waitFor(FRAME.GOAWAY, 5000)
    t.ok(goaway, 'the relay ended the session with GOAWAY')
    const reached = origin.requestCount - before
    t.comment(`${reached} of 5000 reset streams reached the origin`)
    t.ok(reached < 2000, 'the session ended long before the flood was served')
    await servesOthers(t, 10_000)
  })

  t.test('rapid reset on a path that never answers: GOAWAY, and every stream it opened is freed on the agent and the origin', async t => {
    const streamsBefore = (await relay.connectedAgents()).reduce((n, a) => n + a.streams, 0)
    const h2 = await RawH2.connect(port, 'h2.localhost')
    await rapidReset(h2, '/hang')
    t.ok(await h2.waitFor(FRAME.GOAWAY, 5000), 'the relay ended the session with GOAWAY')
    h2.close()
    // Each reset stream must be torn down end to end: the mux stream closed, the origin request aborted.
    const started = Date.now()
    let streams = Infinity
    while (Date.now() - started < 15_000) {
      streams = (await relay.connectedAgents()).reduce((n, a) => n + a.streams, 0)
      if (streams <= streamsBefore && hanging === 0) break
      await new Promise(r => setTimeout(r, 100))
    }
    t.comment(`streams back to ${streams} (before ${streamsBefore}), origin holds ${hanging}, after ${Date.now() - started} ms`)
    t.ok(streams <= streamsBefore, 'no mux stream left open on the agent link')
    t.equal(hanging, 0, 'no request left hanging at the origin')
    await servesOthers(t, 10_000)
  })

  t.test('CONTINUATION flood (CVE-2024-27983 family): the session is ended, memory stays bounded', async t => {
    const h2 = await RawH2.connect(port, 'h2.localhost')
    t.teardown(() => h2.close())
    h2.send(frame(FRAME.HEADERS, 0, 1, headerBlock(requestHeaders(`h2.localhost:${port}`, '/'))))
    const junk = headerBlock([['x-fill', 'y'.repeat(100)]])
    for (let batch = 0; batch < 20 && !h2.closed; batch++) {
      h2.send(...Array.from({ length: 500 }, () => frame(FRAME.CONTINUATION, 0, 1, junk)))
      await new Promise(r => setTimeout(r, 10))
    }
    t.ok(await h2.waitClosed(5000), 'the relay ended the session')
    await servesOthers(t, 10_000)
  })

  t.test('a header list over 16 KiB is refused', async t => {
    const before = origin.requestCount
    const res = await run('curl', ['-sS', '--http2', ...resolve('h2'), '-H', `x-big: ${'b'.repeat(20_000)}`, '-o', '/dev/null', '-w', '%{http_code}', url('h2', '/')])
    t.not(res.stdout, '200', 'not served')
    t.equal(origin.requestCount, before, 'nothing reached the origin')
    await servesOthers(t, 10_000)
  })
})
