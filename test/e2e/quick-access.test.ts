// Quick-mode access (issue 10): `porchlight http PORT --basic-auth U:P`, `--allow-ip CIDR`
// (repeatable) and `--link [--expires 2h]` build the same rules as `access:` in agent.yaml; --link
// prints a share link right after the Forwarding line.
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { startAgent, startRelay } from './harness/processes.js'
import { visit } from './harness/visitor.js'

const SHARE_RE = /^Share link (http:\/\/\S+\?porchlight_share=\S+) \(expires (\S+)\)$/

t.test('--basic-auth: visitors without the password get 401, with it 200; the password never leaves the laptop', async t => {
  const origin = await startHttpOrigin(t, { '/who': (_req, res) => res.end('secret site') })
  const relay = await startRelay(t)
  const agent = await startAgent(t, relay, { args: ['http', String(origin.port), '--name', 'team', '--basic-auth', 'alice:correct horse'] })
  const host = 'team.localhost'
  t.equal((await visit(relay.publicPort, { host, path: '/who' })).status, 401)
  const wrong = Buffer.from('alice:wrong').toString('base64')
  t.equal((await visit(relay.publicPort, { host, path: '/who', headers: { authorization: `Basic ${wrong}` } })).status, 401)
  const right = Buffer.from('alice:correct horse').toString('base64')
  const ok = await visit(relay.publicPort, { host, path: '/who', headers: { authorization: `Basic ${right}` } })
  t.equal(ok.status, 200)
  t.equal(ok.text, 'secret site')
  t.notMatch(relay.output() + agent.stderr(), /correct horse/, 'the password is in no log')
})

t.test('--allow-ip (repeatable): only listed addresses get in', async t => {
  const origin = await startHttpOrigin(t, { '/who': (_req, res) => res.end('office') })
  const relay = await startRelay(t)
  await startAgent(t, relay, { args: ['http', String(origin.port), '--name', 'office', '--allow-ip', '203.0.113.0/24', '--allow-ip', '198.51.100.7'] })
  await startAgent(t, relay, { args: ['http', String(origin.port), '--name', 'local', '--allow-ip', '10.0.0.0/8', '--allow-ip', '127.0.0.1'] })
  t.equal((await visit(relay.publicPort, { host: 'office.localhost', path: '/who' })).status, 403, '127.0.0.1 is not listed')
  const local = await visit(relay.publicPort, { host: 'local.localhost', path: '/who' })
  t.equal(local.status, 200, 'the second --allow-ip lets 127.0.0.1 in')
  t.equal(local.text, 'office')
})

t.test('--link --expires 2h prints a share link right after the Forwarding line; only its holders get in', async t => {
  const origin = await startHttpOrigin(t, { '/who': (_req, res) => res.end('shared') })
  const relay = await startRelay(t)
  const started = Date.now()
  const agent = await startAgent(t, relay, { args: ['http', String(origin.port), '--name', 'photos', '--link', '--expires', '2h'], waitFor: /^Share link / })
  const lines = agent.stdout().split('\n').filter(l => l !== '')
  t.match(lines[0], /^Forwarding http:\/\/photos\.localhost:\d+\/? -> /)
  const m = SHARE_RE.exec(lines[1] ?? '')
  t.ok(m, `the next line is the share link: ${lines[1]}`)
  const expiresMs = Date.parse(m?.[2] ?? '') - started
  t.ok(expiresMs > 2 * 3600_000 - 60_000 && expiresMs <= 2 * 3600_000 + 60_000, `expires in ${Math.round(expiresMs / 60_000)} min (2 h)`)
  const link = new URL(m![1]!)
  t.equal(link.hostname, 'photos.localhost')
  const without = await visit(relay.publicPort, { host: 'photos.localhost', path: '/who' })
  t.ok(without.status === 401 || without.status === 403, `no link: ${without.status}`)
  const withLink = await visit(relay.publicPort, { host: 'photos.localhost', path: `/who${link.search}` })
  t.ok(withLink.status >= 200 && withLink.status < 400, `with the link: ${withLink.status}`)
  const cookie = String(withLink.headers['set-cookie'] ?? '').split(';')[0] ?? ''
  t.match(cookie, /=/, 'the link becomes a cookie')
  const again = await visit(relay.publicPort, { host: 'photos.localhost', path: '/who', headers: { cookie } })
  t.equal(again.status, 200)
  t.equal(again.text, 'shared')
})

t.test('bad access flags are usage errors', async t => {
  const relay = await startRelay(t)
  const noPass = await startAgent(t, relay, { args: ['http', '3000', '--basic-auth', 'alice'], expectExit: true })
  t.equal(await noPass.exited, 2)
  t.match(noPass.stderr(), /PL_ERR_USAGE: --basic-auth must be USER:PASSWORD/)
  const noLink = await startAgent(t, relay, { args: ['http', '3000', '--expires', '2h'], expectExit: true })
  t.equal(await noLink.exited, 2)
  t.match(noLink.stderr(), /PL_ERR_USAGE: --expires needs --link/)
  const tooLong = await startAgent(t, relay, { args: ['http', '3000', '--link', '--expires', '366d'], expectExit: true })
  t.equal(await tooLong.exited, 2)
  t.match(tooLong.stderr(), /PL_ERR_USAGE/)
})
