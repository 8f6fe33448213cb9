// The live terminal screen of `porchlight up` on a real terminal (tmux): the public URL, the
// inspector URL and the requests appear as traffic passes; plain `Forwarding` lines stay for pipes.
import { execFile, execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { writeYaml } from './harness/config.js'
import { startHttpOrigin } from './harness/origins.js'
import { AGENT_BIN, ROOT, startAgent, startRelay } from './harness/processes.js'
import { pollUntil } from './harness/wait.js'
import { visit } from './harness/visitor.js'

const ARTIFACTS = process.env['PORCHLIGHT_E2E_ARTIFACTS'] ?? join(ROOT, 'test/e2e/artifacts/terminal-view')

function hasTmux(): boolean {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

if (!hasTmux()) {
  t.plan(0, 'tmux is missing (apt-get install tmux; .ci/run installs it)')
  process.exit(0)
}

const socket = `porchlight-e2e-${process.pid}`
const tmux = (...args: string[]): Promise<string> => new Promise((resolve, reject) => {
  execFile('tmux', ['-L', socket, ...args], { timeout: 10_000 }, (err, stdout) => (err ? reject(err) : resolve(String(stdout))))
})

t.test('porchlight up on a terminal shows the live screen', async (t) => {
  const origin = await startHttpOrigin(t)
  const relay = await startRelay(t)
  const dir = t.testdir()
  const config = join(dir, 'agent.yaml')
  writeYaml(config, { relay: relay.agentsUrl, token: relay.tokens['laptop']!, inspect: '127.0.0.1:0', tunnels: [{ http: 'screen', to: origin.url }] })
  const home = join(dir, 'home')
  mkdirSync(home)
  const command = ['env', '-u', 'PORCHLIGHT_LOG_FORMAT', `HOME=${home}`, process.execPath, AGENT_BIN, 'up', '-c', config]
  await tmux('new-session', '-d', '-x', '120', '-y', '40', '-s', 'view', ...command)
  t.teardown(() => tmux('kill-server').catch(() => undefined))
  const screen = (): Promise<string> => tmux('capture-pane', '-p', '-t', 'view')
  const url = `http://screen.localhost:${relay.publicPort}`
  const ready = await pollUntil(screen, (s) => s.includes(url) && /Link\s+online/.test(s), { timeoutMs: 20_000, intervalMs: 100 })
  t.ok(ready.ok, `the public URL and the link state appear:\n${ready.value}`)
  t.match(ready.value, /Inspector\s+http:\/\/127\.0\.0\.1:\d+\//, 'the inspector URL')
  for (const path of ['/tmux-one', '/tmux-two', '/status/404']) {
    t.equal((await visit(relay.publicPort, { host: 'screen.localhost', path })).status, path === '/status/404' ? 404 : 200)
  }
  const shown = await pollUntil(screen, (s) => /GET\s+\/tmux-one\s+200\s+\d+ ms/.test(s) && /GET\s+\/tmux-two\s+200/.test(s) && /GET\s+\/status\/404\s+404/.test(s), { timeoutMs: 20_000, intervalMs: 100 })
  t.ok(shown.ok, `the requests appear with status and ms:\n${shown.value}`)
  t.match(shown.value, /Requests\s+3 total, 0 open\s+2xx 2 {2}3xx 0 {2}4xx 1/, 'the counts')
  t.ok(shown.value.indexOf('/status/404') < shown.value.indexOf('/tmux-one'), 'newest first')
  mkdirSync(ARTIFACTS, { recursive: true })
  writeFileSync(join(ARTIFACTS, 'screen.txt'), shown.value)
  t.comment(`screen saved in ${join(ARTIFACTS, 'screen.txt')}`)
})

t.test('without a terminal the plain Forwarding lines are printed exactly as before', async (t) => {
  const origin = await startHttpOrigin(t)
  const relay = await startRelay(t)
  const agent = await startAgent(t, relay, { tunnels: [{ http: 'plain', to: origin.url }] })
  t.equal(agent.stdout(), `Forwarding http://plain.localhost:${relay.publicPort}/ -> ${origin.url}`)
  t.notMatch(agent.stdout(), /\x1b\[/, 'no escape sequences')
})

t.test('--log json: JSON lines on stderr, plain lines on stdout', async (t) => {
  const origin = await startHttpOrigin(t)
  const relay = await startRelay(t)
  const agent = await startAgent(t, relay, { args: ['--log', 'json', 'http', origin.url, '--name', 'jsonlog'] })
  t.match(agent.stdout(), /^Forwarding http:\/\/jsonlog\.localhost:\d+\/ -> /)
  t.ok(agent.logs().some((l) => l['msg'] === 'tunnel ready'), 'pino JSON on stderr')
})
