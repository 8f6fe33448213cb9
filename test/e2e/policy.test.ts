// What the relay refuses: bad tokens, hosts outside an agent's policy, hosts already taken, and
// configs with mistakes in them.
import { createHash, randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { join } from 'node:path'
import t from 'tap'
import { writeYaml } from './harness/config.js'
import { startHttpOrigin } from './harness/origins.js'
import { runCli, startAgent, startRelay } from './harness/processes.js'
import { visit } from './harness/visitor.js'

/** Sends a WebSocket upgrade to the agents listener and reports the HTTP status it got back. */
function upgradeStatus(port: number, authorization: string | null): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path: '/agent',
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
        ...(authorization === null ? {} : { authorization }),
      },
    })
    req.setTimeout(5000, () => req.destroy(new Error('no answer to the upgrade within 5 s')))
    req.once('upgrade', (res, socket) => { socket.destroy(); resolve(res.statusCode ?? 101) })
    req.once('response', res => { res.resume(); resolve(res.statusCode ?? 0) })
    req.once('error', reject)
    req.end()
  })
}

t.test('a bad token is refused before the upgrade and the agent exits 1', async t => {
  const relay = await startRelay(t)
  t.equal(await upgradeStatus(relay.agentsPort, 'Bearer not-the-token'), 401, 'wrong token -> 401')
  t.equal(await upgradeStatus(relay.agentsPort, null), 401, 'no token -> 401')

  const agent = await startAgent(t, relay, { token: 'not-the-token', tunnels: [{ http: 'blog', to: 'http://127.0.0.1:9' }], expectExit: true })
  t.equal(await agent.exited, 1)
  // Pino JSON lines may mention the code too; the human line is the one that starts with it.
  const lines = agent.stderr().split('\n').filter(l => l.startsWith('PL_ERR_AUTH_BAD_TOKEN: '))
  t.equal(lines.length, 1, `one \`PL_ERR_AUTH_BAD_TOKEN: …\` line: ${JSON.stringify(lines)}`)
  t.notMatch(agent.stderr(), /\n\s+at /, 'no stack trace')
  t.equal(agent.urls.length, 0)
  t.notMatch(relay.output(), /not-the-token/, 'the relay never logs a presented token')
})

t.test('hosts outside the agent policy are rejected, allowed ones work', async t => {
  const origin = await startHttpOrigin(t)
  const relay = await startRelay(t, { agents: { laptop: { hosts: ['ok.localhost'] } } })
  const agent = await startAgent(t, relay, {
    tunnels: [{ http: 'ok', to: origin.url }, { http: 'nope', to: origin.url }],
    forwarding: 1,
    waitFor: /PL_ERR_POLICY_HOST_DENIED/,
  })
  t.same(agent.urls, [`http://ok.localhost:${relay.publicPort}`])
  t.match(agent.stderr(), /PL_ERR_POLICY_HOST_DENIED/)
  t.equal((await visit(relay.publicPort, { host: 'ok.localhost', path: '/hello' })).status, 200)
  t.equal((await visit(relay.publicPort, { host: 'nope.localhost', path: '/hello' })).status, 404)
  t.equal(origin.requests.filter(r => r.url === '/hello').length, 1, 'only the allowed host reached the origin')
})

t.test('a second agent cannot take a host in use; the first keeps serving', async t => {
  const first = await startHttpOrigin(t, { '/': (_req, res) => res.end('first agent') })
  const second = await startHttpOrigin(t, { '/': (_req, res) => res.end('second agent') })
  const relay = await startRelay(t, { agents: { laptop: {}, desk: {} } })
  await startAgent(t, relay, { name: 'laptop', tunnels: [{ http: 'blog', to: first.url }] })
  const intruder = await startAgent(t, relay, {
    name: 'desk',
    tunnels: [{ http: 'blog', to: second.url }],
    forwarding: 0,
    waitFor: /PL_ERR_POLICY_HOST_IN_USE/,
  })
  t.equal(intruder.urls.length, 0)
  const res = await visit(relay.publicPort, { host: 'blog.localhost' })
  t.equal(res.status, 200)
  t.equal(res.text, 'first agent')
  t.equal(second.requestCount, 0)
  // The access line is written after the response, asynchronously: wait for it.
  const access = await relay.waitForLog(l => l['msg'] === 'request' && l['host'] === 'blog.localhost', 5000, 'access log line for blog.localhost')
  t.equal(access['agent'], 'laptop')
  t.equal(access['status'], 200)
})

t.test('check lists every issue of a bad config and exits 1', async t => {
  const dir = t.testdir()
  const bad = join(dir, 'bad.yaml')
  writeYaml(bad, {
    domain: 'localhost',
    listen_adress: '127.0.0.1:80',
    listen: { public: '127.0.0.1:0', agents: '127.0.0.1:0', admin: false },
    agents: {
      laptop: { token_sha256: 'not-hex', hosts: ['ok.localhost', 'bad host!'], tcp_ports: [70000] },
    },
  })
  const res = await runCli('relay', ['check', '-c', bad])
  const out = `${res.stdout}\n${res.stderr}`
  t.equal(res.code, 1, 'check exits 1')
  t.match(out, /listen_adress/)
  t.match(out, /did you mean "listen"/)
  t.match(out, /agents\.laptop\.token_sha256: /)
  t.match(out, /agents\.laptop\.hosts\[1\]: /)
  t.match(out, /agents\.laptop\.tcp_ports\[0\]: /)
  t.notMatch(out, /\n\s+at /, 'no stack trace')

  const good = join(dir, 'good.yaml')
  writeYaml(good, {
    listen: { public: '127.0.0.1:0', agents: '127.0.0.1:0', admin: false },
    agents: { laptop: { token_sha256: 'a'.repeat(64), hosts: ['*.localhost'] } },
  })
  const ok = await runCli('relay', ['check', '-c', good])
  t.equal(ok.code, 0, 'a good config passes check')
  if (ok.code !== 0) t.comment(`${ok.stdout}${ok.stderr}`)
})

t.test('token new prints a token and its token_sha256 line', async t => {
  const res = await runCli('relay', ['token', 'new', 'laptop'])
  t.equal(res.code, 0, res.stderr)
  const hashLine = /token_sha256:\s*"?([0-9a-f]{64})"?/.exec(res.stdout)
  t.ok(hashLine, 'a token_sha256 line with 64 hex chars')
  if (!hashLine) t.comment(res.stdout)
  const words = res.stdout.split(/[\s"']+/).filter(w => w.length >= 32)
  const token = words.find(w => createHash('sha256').update(w).digest('hex') === hashLine?.[1])
  t.ok(token, 'the printed token hashes to the printed token_sha256')
})
