// The command-line contract: quick sharing, --help, usage errors (exit 2) and config errors (exit 1,
// one `CODE: message` line, no stack).
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { runCli, startAgent, startRelay } from './harness/processes.js'
import { visit } from './harness/visitor.js'

t.test('porchlight http PORT shares a local server at once', async t => {
  const origin = await startHttpOrigin(t, { '/': (_req, res) => res.end('quick share') })
  const relay = await startRelay(t)
  // Relay URL and token come from PORCHLIGHT_RELAY / PORCHLIGHT_TOKEN (set by the harness).
  const agent = await startAgent(t, relay, { args: ['http', String(origin.port), '--name', 'quick'] })
  t.same(agent.forwarding, [{ publicUrl: `http://quick.localhost:${relay.publicPort}`, localUrl: `http://127.0.0.1:${origin.port}` }])
  const res = await visit(relay.publicPort, { host: 'quick.localhost' })
  t.equal(res.status, 200)
  t.equal(res.text, 'quick share')
})

t.test('flags win over the environment in quick mode', async t => {
  const origin = await startHttpOrigin(t, { '/': (_req, res) => res.end('flags') })
  const relay = await startRelay(t)
  const agent = await startAgent(t, relay, {
    args: ['http', origin.url, '--name', 'flagged', '--relay', relay.agentsUrl, '--token', relay.tokens['laptop'] ?? ''],
    env: { PORCHLIGHT_RELAY: 'ws://127.0.0.1:9', PORCHLIGHT_TOKEN: 'wrong' },
  })
  t.equal(agent.urls[0], `http://flagged.localhost:${relay.publicPort}`)
  t.equal((await visit(relay.publicPort, { host: 'flagged.localhost' })).text, 'flags')
})

t.test('--help exits 0 and lists the commands', async t => {
  const agent = await runCli('agent', ['--help'])
  t.equal(agent.code, 0)
  for (const cmd of ['up', 'http', 'tcp', 'forward', 'status', 'link']) t.match(agent.stdout, new RegExp(`\\b${cmd}\\b`), `porchlight --help mentions ${cmd}`)
  const relay = await runCli('relay', ['--help'])
  t.equal(relay.code, 0)
  for (const cmd of ['serve', 'check', 'token', 'ca', 'cert']) t.match(relay.stdout, new RegExp(`\\b${cmd}\\b`), `porchlight-relay --help mentions ${cmd}`)
})

t.test('bad usage exits 2', async t => {
  t.equal((await runCli('agent', ['no-such-command'])).code, 2)
  t.equal((await runCli('agent', ['http'])).code, 2, 'missing PORT')
  t.equal((await runCli('relay', ['serve', '--no-such-flag'])).code, 2)
})

t.test('a missing config file exits 1 with one PL_ERR_CONFIG_READ line', async t => {
  for (const [which, args] of [['agent', ['up', '-c', '/nonexistent/agent.yaml']], ['relay', ['serve', '-c', '/nonexistent/relay.yaml']]] as const) {
    const res = await runCli(which, [...args])
    t.equal(res.code, 1, `${which} exits 1`)
    // Pino JSON lines aside, the user sees exactly one line.
    const lines = res.stderr.trim().split('\n').filter(l => !l.startsWith('{'))
    t.equal(lines.length, 1, `${which}: one human line on stderr: ${JSON.stringify(lines)}`)
    t.match(lines[0], /^PL_ERR_CONFIG_READ: /)
  }
})

t.test('--debug adds the stack, mapped from the minified bundle to the TypeScript source lines', async t => {
  for (const [which, args] of [['agent', ['--debug', 'up', '-c', '/nonexistent/agent.yaml']], ['relay', ['serve', '--debug', '-c', '/nonexistent/relay.yaml']]] as const) {
    const res = await runCli(which, [...args])
    t.equal(res.code, 1, `${which} exits 1`)
    const lines = res.stderr.trim().split('\n').filter(l => !l.startsWith('{'))
    t.match(lines[0], /^PL_ERR_CONFIG_READ: /)
    const frames = lines.filter(l => /^\s+at /.test(l))
    t.ok(frames.length >= 2, `${which}: a stack follows (${frames.length} frames)`)
    t.match(frames[0], /packages\/shared\/src\/config\/load\.ts:\d+:\d+\)$/, `${which}: the first frame names the source file and line: ${frames[0]}`)
  }
})
