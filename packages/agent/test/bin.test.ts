import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { startFakeRelay, TEST_TOKEN } from './helpers/fake-relay.js'
import { closedPort, startOrigin } from './helpers/origin.js'
import { runCli, spawnCli } from './helpers/cli.js'

t.test('usage: --help exits 0; bad usage exits 2 with what is wrong', async (t) => {
  const home = t.testdir()
  const help = await runCli(t, ['--help'], { HOME: home })
  t.equal(help.code, 0)
  t.match(help.stdout, /Usage: porchlight/)
  for (const cmd of ['up', 'http', 'tcp', 'forward', 'status', 'link', 'hash-password']) t.match(help.stdout, new RegExp(`\\n  ${cmd}`), `lists ${cmd}`)
  const httpHelp = await runCli(t, ['http', '--help'], { HOME: home })
  t.equal(httpHelp.code, 0)
  t.match(httpHelp.stdout, /--host-header <host>/)
  const table: Array<[string[], RegExp]> = [
    [['bogus'], /unknown command 'bogus'/],
    [['http'], /missing required argument 'target'/],
    [['http', 'not-a-port'], /^PL_ERR_USAGE: expected PORT, HOST:PORT or http\(s\):\/\/HOST:PORT, got "not-a-port"$/m],
    [['tcp', '22', '--remote-port', '70000'], /^PL_ERR_USAGE: --remote-port must be a port number/m],
    [['forward', '2525', 'smtp.example.com'], /^PL_ERR_USAGE: destination must be HOST:PORT/m],
    [['link', 'create', 'blog', '--expires', '5y'], /^PL_ERR_USAGE: invalid duration "5y"/m],
    [['http', '3000'], /^PL_ERR_USAGE: no relay given: pass --relay URL, set PORCHLIGHT_RELAY, or write .*agent\.yaml$/m],
  ]
  const results = await Promise.all(table.map(([args]) => runCli(t, args, { HOME: home })))
  for (const [i, [args, want]] of table.entries()) {
    const r = results[i]!
    t.equal(r.code, 2, `${args.join(' ')} exits 2`)
    t.match(r.stderr, want, args.join(' '))
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
  }
})

t.test('status and link with no agent running: PL_ERR_AGENT_NOT_RUNNING, exit 1', async (t) => {
  const dir = t.testdir()
  const port = await closedPort()
  const config = join(dir, 'agent.yaml')
  await writeFile(config, `relay: ws://127.0.0.1:1\ntoken: env:SOME_TOKEN\ninspect: 127.0.0.1:${port}\n`, { mode: 0o600 })
  const status = await runCli(t, ['status', '-c', config], { HOME: dir })
  t.equal(status.code, 1)
  t.equal(status.stderr, `PL_ERR_AGENT_NOT_RUNNING: no agent is running (nothing answers on 127.0.0.1:${port})`)
  const list = await runCli(t, ['link', 'list', '-c', config], { HOME: dir })
  t.equal(list.code, 1)
})

t.test('bad token: exit 1 with exactly one PL_ERR_AUTH_BAD_TOKEN line, no stack', async (t) => {
  const relay = await startFakeRelay(t)
  const r = await runCli(t, ['http', '3000', '--name', 'blog'], { HOME: t.testdir(), PORCHLIGHT_RELAY: relay.url, PORCHLIGHT_TOKEN: 'wrong-token-0123456789-0123456789-abcdef' })
  t.equal(r.code, 1)
  const lines = r.stderr.split('\n').filter((l) => l.includes('PL_ERR_AUTH_BAD_TOKEN'))
  t.same(lines, ['PL_ERR_AUTH_BAD_TOKEN: relay rejected the agent token (HTTP 401)'])
  t.notMatch(r.stderr, /\n\s+at /)
  t.equal(r.stdout, '')
  t.equal(relay.upgrades.length, 1, 'no retry after 401')
})

t.test('quick http: prints Forwarding, serves, rejected names exit 1, SIGTERM exits 0', async (t) => {
  const origin = await startOrigin(t)
  const relay = await startFakeRelay(t, {
    publish: (tunnels) => tunnels.map((s) => (s.kind === 'http' && s.host === 'taken'
      ? { id: s.id, ok: false as const, code: 'PL_ERR_POLICY_HOST_IN_USE', message: 'host taken.localhost is already published by another agent' }
      // Like the real relay, a quick share without --name ("*") gets a random name picked for it.
      : { id: s.id, ok: true as const, url: `http://${s.kind === 'http' ? (s.host === '*' ? 'brave-otter-3f9a' : s.host) : 'x'}.localhost:${relay.port}` })),
  })
  const env = { HOME: t.testdir(), PORCHLIGHT_TOKEN: TEST_TOKEN }
  const agent = spawnCli(t, ['http', String(origin.port), '--name', 'blog', '--host-header', 'blog.local', '--relay', relay.url], env)
  const line = await agent.waitForStdout(/^Forwarding /)
  t.equal(line, `Forwarding http://blog.localhost:${relay.port} -> http://127.0.0.1:${origin.port}`)
  t.same(relay.lastSession().messages[1], { type: 'publish', tunnels: [{ id: 'blog', kind: 'http', host: 'blog', origin: { host: 'blog.local', path: '' } }] }, 'the Host the relay writes is --host-header')
  const logs = agent.stderr.map((l) => JSON.parse(l) as Record<string, unknown>)
  t.ok(logs.some((l) => l['msg'] === 'connected'), 'JSON logs on stderr')
  agent.child.kill('SIGTERM')
  t.equal(await agent.exited, 0)

  const random = spawnCli(t, ['http', String(origin.port), '--relay', relay.url], env)
  const randomLine = await random.waitForStdout(/^Forwarding /)
  t.match(randomLine, /^Forwarding http:\/\/[a-z]+-[a-z]+-[0-9a-f]{4}\.localhost:\d+ -> /, 'random readable name')
  t.match(relay.lastSession().messages[1], { type: 'publish', tunnels: [{ kind: 'http', host: '*' }] }, 'the relay is asked to pick the name')
  random.child.kill('SIGINT')
  t.equal(await random.exited, 0)

  const rejected = await runCli(t, ['http', String(origin.port), '--name', 'taken', '--relay', relay.url], env)
  t.equal(rejected.code, 1)
  t.match(rejected.stderr, /^PL_ERR_POLICY_HOST_IN_USE: host taken\.localhost is already published by another agent$/m)
})

t.test('up: Forwarding per tunnel, status and link via the status API, SIGHUP reload', async (t) => {
  const origin = await startOrigin(t)
  const relay = await startFakeRelay(t, {
    request: (req) => (req.op === 'link.list'
      ? { ok: true, result: [{ id: 'l1', host: 'blog.localhost', note: 'bob', expiresAt: Date.UTC(2030, 0, 1), revoked: false }] }
      : { ok: true, result: { id: 'l2', url: 'http://blog.localhost/?porchlight_share=abc' } }),
  })
  const dir = t.testdir()
  const inspectPort = await closedPort()
  const config = join(dir, 'agent.yaml')
  const yaml = (tunnels: string): string => `relay: ${relay.url}\ntoken: env:AGENT_TOKEN\ninspect: 127.0.0.1:${inspectPort}\ntunnels:\n${tunnels}`
  const blog = `  - http: blog\n    to: ${origin.url}\n    host_header: null\n`
  await writeFile(config, yaml(blog), { mode: 0o600 })
  const agent = spawnCli(t, ['up', '-c', config], { HOME: dir, AGENT_TOKEN: TEST_TOKEN })
  t.equal(await agent.waitForStdout(/^Forwarding /), `Forwarding http://blog.localhost:${relay.port} -> ${origin.url}`)

  const status = await runCli(t, ['status', '-c', config], { HOME: dir })
  t.equal(status.code, 0)
  t.match(status.stdout, new RegExp(`connected to ${relay.url} as laptop \\(session s1\\)`))
  t.match(status.stdout, new RegExp(`ready\\s+blog\\s+http://blog\\.localhost:${relay.port} -> ${origin.url}`))

  const list = await runCli(t, ['link', 'list', '-c', config], { HOME: dir })
  t.equal(list.code, 0)
  t.match(list.stdout, /^ID\s+HOST\s+EXPIRES\s+NOTE$/m)
  t.match(list.stdout, /^l1\s+blog\.localhost\s+2030-01-01T00:00:00\.000Z\s+bob$/m)
  const created = await runCli(t, ['link', 'create', 'blog.localhost', '--expires', '30m', '-c', config], { HOME: dir })
  t.equal(created.stdout, 'http://blog.localhost/?porchlight_share=abc')
  const createRequest = relay.lastSession().messages.find((m) => m.type === 'request' && m.op === 'link.create')
  t.same(createRequest?.type === 'request' && createRequest.args, { host: 'blog.localhost', expires_ms: 1_800_000, note: '' })

  await writeFile(config, yaml(`${blog}  - http: docs\n    to: ${origin.url}\n    host_header: null\n`), { mode: 0o600 })
  agent.child.kill('SIGHUP')
  t.equal(await agent.waitForStdout(/Forwarding http:\/\/docs/), `Forwarding http://docs.localhost:${relay.port} -> ${origin.url}`)
  t.equal(relay.sessions.length, 1, 'reload kept the session')
  agent.child.kill('SIGTERM')
  t.equal(await agent.exited, 0)
})

t.test('hash-password --password-stdin prints an scrypt hash and nothing else', async (t) => {
  const r = await runCli(t, ['hash-password', '--password-stdin'], { HOME: t.testdir() }, 'correct horse\n')
  t.equal(r.code, 0)
  t.match(r.stdout, /^scrypt:[^\n]+$/)
  t.notMatch(r.stdout + r.stderr, /correct horse/)
})
