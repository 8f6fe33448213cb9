// Guided set-up as docs/quickstart.md and docs/install.md tell it, in two throwaway HOMEs: a
// "VPS" runs `porchlight-relay init`, `serve` and `agent add`; a "laptop" runs the printed
// `porchlight login <code>` and `porchlight http PORT`; a visitor gets the laptop's page. Only
// the listen addresses differ from the docs (loopback, port 0) and `--relay-url`, because
// tunnel.example.com does not resolve here.
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ChildHandle, childEnv, jsonLines, nodeCommand } from './harness/child.js'
import { startHttpOrigin } from './harness/origins.js'
import { AGENT_BIN, RELAY_BIN, runCli } from './harness/processes.js'
import { splitHostPort } from './harness/ports.js'
import { visit } from './harness/visitor.js'

const mode = (file: string): string => (statSync(file).mode & 0o777).toString(8)
const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex')

t.test('init, serve, agent add, login, http PORT: a visitor gets 200 from the laptop', async t => {
  const root = t.testdir()
  const vps = join(root, 'vps')
  const laptop = join(root, 'laptop')
  mkdirSync(vps)
  mkdirSync(laptop)
  const dir = join(vps, 'porchlight')
  const relayYaml = join(dir, 'relay.yaml')
  const onVps = { env: { HOME: vps }, cwd: vps }

  // 1. porchlight-relay init
  const init = await runCli('relay', ['init', '--domain', 'tunnel.example.com', '--dir', dir,
    '--listen-public', '127.0.0.1:0', '--listen-agents', '127.0.0.1:0', '--listen-admin', '127.0.0.1:0'], onVps)
  t.equal(init.code, 0, init.stderr)
  const adminToken = /admin token[^\n]*\n {2}(\S+)\n/.exec(init.stdout)?.[1] ?? ''
  t.match(adminToken, /^[A-Za-z0-9_-]{43}$/, 'the admin token is printed once')
  const text = readFileSync(relayYaml, 'utf8')
  t.ok(text.includes(`admin_token_sha256: "${sha256(adminToken)}"`), 'only its sha256 is in relay.yaml')
  t.notOk(text.includes(adminToken), 'the token itself is not')
  t.match(init.stdout, /\*\.tunnel\.example\.com\. +A\/AAAA/, 'prints the wildcard DNS record')
  t.match(init.stdout, /next:\n {2}porchlight-relay serve/, 'and the next command')
  t.same([mode(relayYaml), mode(join(dir, 'pki')), mode(join(dir, 'state')), mode(join(dir, 'pki/ca.key')), mode(join(dir, 'pki/server.key'))], ['600', '700', '700', '600', '600'])
  const check = await runCli('relay', ['check', '-c', relayYaml], onVps)
  t.equal(check.code, 0, `check passes: ${check.stderr}`)
  const again = await runCli('relay', ['init', '--domain', 'tunnel.example.com', '--dir', dir], onVps)
  t.equal(again.code, 1, 'a second init refuses')
  t.match(again.stderr, /^PL_ERR_CONFIG_EXISTS: .*relay\.yaml already exists/)
  t.equal(readFileSync(relayYaml, 'utf8'), text, 'and leaves the config alone')

  // 2. porchlight-relay serve (cwd has relay.yaml, so no -c is needed, as after `cd /etc/porchlight`)
  const relay = new ChildHandle(t, { label: 'relay', ...nodeCommand(RELAY_BIN, ['serve']), env: childEnv(vps), cwd: dir })
  const ready = jsonLines([await relay.waitForLine('stdout', l => jsonLines([l])[0]?.['msg'] === 'ready', 15_000, 'relay ready')])[0]!
  const agentsPort = splitHostPort(String(ready['agents'])).port
  const publicPort = splitHostPort(String(ready['public'])).port
  const adminPort = splitHostPort(String(ready['admin'])).port

  // 3. porchlight-relay agent add laptop: one line on stdout, the running relay reloaded
  const add = await runCli('relay', ['agent', 'add', 'laptop', '--relay-url', `wss://127.0.0.1:${agentsPort}`], { ...onVps, cwd: dir })
  t.equal(add.code, 0, add.stderr)
  const lines = add.stdout.trim().split('\n')
  t.equal(lines.length, 1, 'exactly one line on stdout')
  t.match(lines[0], /^porchlight login pl1_[A-Za-z0-9_-]+$/)
  t.match(add.stderr, /reloaded the running relay \(pid \d+\)/)
  t.match(readFileSync(relayYaml, 'utf8'), /# Who may connect[\s\S]*agents:\n {2}# added by porchlight-relay agent add on [\d-]+\n {2}laptop:\n {4}token_sha256: "[0-9a-f]{64}"\n {4}hosts: \[ "\*\.laptop\.tunnel\.example\.com" \]\n$/, 'edited in place, comments kept')
  const list = await runCli('relay', ['agent', 'list', '-c', relayYaml], onVps)
  t.match(list.stdout, /^NAME +HOSTS +TCP PORTS +OUTBOUND +CERT\nlaptop +\*\.laptop\.tunnel\.example\.com +- +- +no\n$/)

  // 4. on the laptop: porchlight login <code>
  const code = lines[0]!.split(' ')[2]!
  const login = await runCli('agent', ['login', code], { env: { HOME: laptop }, cwd: laptop })
  t.equal(login.code, 0, login.stderr)
  t.match(login.stdout, /pinned the relay's CA \(SHA-256 [0-9A-F:]{95}\)/)
  t.match(login.stdout, /link ok: the relay welcomed agent laptop \(domain tunnel\.example\.com\)/)
  const agentYaml = join(laptop, '.config/porchlight/agent.yaml')
  t.equal(mode(agentYaml), '600')
  t.equal(mode(join(laptop, '.config/porchlight')), '700')
  t.equal(readFileSync(join(laptop, '.config/porchlight/relay-ca.pem'), 'utf8'), readFileSync(join(dir, 'pki/ca.crt'), 'utf8'), 'the pinned CA is the relay\'s own')
  const agentCheck = await runCli('agent', ['check'], { env: { HOME: laptop }, cwd: laptop })
  t.equal(agentCheck.code, 0, agentCheck.stderr)
  t.match(agentCheck.stdout, /agent\.yaml: ok \(0 tunnels, relay wss:\/\/127\.0\.0\.1:\d+\)/)
  const twice = await runCli('agent', ['login', code], { env: { HOME: laptop }, cwd: laptop })
  t.equal(twice.code, 1)
  t.match(twice.stderr, /^PL_ERR_CONFIG_EXISTS: .*--force/m)

  // 5. porchlight http PORT: no flags, no environment; a visitor gets the laptop's page
  const origin = await startHttpOrigin(t, { '/': (_req, res) => res.end('hello from the laptop') })
  const share = new ChildHandle(t, { label: 'agent http', ...nodeCommand(AGENT_BIN, ['http', String(origin.port)]), env: childEnv(laptop), cwd: laptop })
  const forwarding = await share.waitForLine('stdout', /^Forwarding /, 15_000, 'Forwarding line')
  const publicUrl = new URL(/^Forwarding (\S+) ->/.exec(forwarding)?.[1] ?? '')
  t.match(publicUrl.hostname, /^[a-z0-9-]+\.laptop\.tunnel\.example\.com$/, 'a random name inside the default policy')
  const res = await visit(publicPort, { host: publicUrl.hostname })
  t.equal(res.status, 200)
  t.equal(res.text, 'hello from the laptop')

  // The admin token init printed opens the API.
  const agents = await fetch(`http://127.0.0.1:${adminPort}/api/agents`, { headers: { authorization: `Bearer ${adminToken}` } })
  t.equal(agents.status, 200)
  t.ok(((await agents.json()) as Array<{ name: string }>).some(a => a.name === 'laptop'))

  // 6. agent remove: the token stops working at the next connection (relay reloaded)
  const remove = await runCli('relay', ['agent', 'remove', 'laptop', '-c', relayYaml], onVps)
  t.equal(remove.code, 0, remove.stderr)
  t.match(remove.stderr, /reloaded the running relay/)
  const relogin = await runCli('agent', ['login', '--force', code], { env: { HOME: laptop }, cwd: laptop })
  t.equal(relogin.code, 1)
  t.match(relogin.stderr, /PL_ERR_AUTH_BAD_TOKEN/)
})

t.test('agent add --cert: the code carries a client certificate the relay then requires', async t => {
  const root = t.testdir()
  const dir = join(root, 'relay')
  const home = join(root, 'laptop')
  mkdirSync(home)
  t.equal((await runCli('relay', ['init', '--domain', 'tunnel.example.com', '--dir', dir, '--listen-public', '127.0.0.1:0', '--listen-agents', '127.0.0.1:0', '--listen-admin', '127.0.0.1:0'])).code, 0)
  const relay = new ChildHandle(t, { label: 'relay', ...nodeCommand(RELAY_BIN, ['serve', '-c', join(dir, 'relay.yaml')]), env: childEnv(root), cwd: root })
  const ready = jsonLines([await relay.waitForLine('stdout', l => jsonLines([l])[0]?.['msg'] === 'ready', 15_000, 'relay ready')])[0]!
  const port = splitHostPort(String(ready['agents'])).port
  const add = await runCli('relay', ['agent', 'add', 'desk', '--cert', '--tcp-ports', '2222,30000-30010', '--relay-url', `wss://127.0.0.1:${port}`, '-c', join(dir, 'relay.yaml')])
  t.equal(add.code, 0, add.stderr)
  t.match(add.stderr, /client certificate required/)
  const login = await runCli('agent', ['login', add.stdout.trim().split(' ')[2]!], { env: { HOME: home } })
  t.equal(login.code, 0, login.stderr)
  const bundle = join(home, '.config/porchlight/desk.pem')
  t.equal(mode(bundle), '600')
  t.match(readFileSync(bundle, 'utf8'), /BEGIN CERTIFICATE[\s\S]*BEGIN PRIVATE KEY[\s\S]*BEGIN CERTIFICATE/)
  // Without the bundle the same token is refused: require_cert is on.
  const yaml = readFileSync(join(home, '.config/porchlight/agent.yaml'), 'utf8').replace(/^cert: .*$/m, '')
  writeFileSync(join(home, 'nocert.yaml'), yaml, { mode: 0o600 })
  const bare = await runCli('agent', ['tcp', '22', '-c', join(home, 'nocert.yaml')], { env: { HOME: home } })
  t.equal(bare.code, 1)
  t.match(bare.stderr, /PL_ERR_AUTH_CERT_(REQUIRED|REJECTED)/)
})

t.test('issue 10 defects, as the docs run the commands', async t => {
  const relayVersion = await runCli('relay', ['--version'])
  t.equal(relayVersion.code, 0, 'porchlight-relay --version is accepted')
  t.match(relayVersion.stdout, /^\d+\.\d+\.\d+\n$/)

  // install.md: relay.yaml names pki:, `ca init -c` creates it there, then bare `cert issue laptop`
  // (in the config's directory, like /etc/porchlight) finds it: no --pki again.
  const root = t.testdir()
  const etc = join(root, 'etc')
  mkdirSync(etc)
  writeFileSync(join(etc, 'relay.yaml'), `pki: ${join(root, 'var/pki')}\nagents: {}\n`)
  t.equal((await runCli('relay', ['ca', 'init', '-c', join(etc, 'relay.yaml'), '--hostname', 'tunnel.example.com'])).code, 0)
  const issue = await runCli('relay', ['cert', 'issue', 'laptop'], { cwd: etc })
  t.equal(issue.code, 0, issue.stderr)
  t.match(issue.stdout, /^issued agent certificate for laptop: serial [0-9a-f]+/)
  const list = await runCli('relay', ['cert', 'list'], { cwd: etc })
  t.match(list.stdout, /^NAME +SERIAL +EXPIRES +REVOKED\nlaptop /, 'cert list shows it')
  const viaEnv = await runCli('relay', ['cert', 'list'], { env: { PORCHLIGHT_RELAY_CONFIG: join(etc, 'relay.yaml') } })
  t.match(viaEnv.stdout, /\nlaptop /, 'or with PORCHLIGHT_RELAY_CONFIG')

  // Where there is no CA, cert list says so instead of "no certificates issued yet".
  const empty = await runCli('relay', ['cert', 'list', '--pki', join(root, 'nothing')])
  t.equal(empty.code, 1)
  t.match(empty.stderr, /^PL_ERR_PKI_MISSING: no CA in /)

  // Share links: the relay caps them at 365 days, so the CLI refuses 366d before asking anyone.
  const link = await runCli('agent', ['link', 'create', 'blog', '--expires', '366d'])
  t.equal(link.code, 2)
  t.match(link.stderr, /^PL_ERR_USAGE: duration "366d" must be between 1s and 365d/)

  // A mistyped enrolment code is a clear one-line error, exit 2.
  const typo = await runCli('agent', ['login', 'pl1_AAAAAAAAAA'])
  t.equal(typo.code, 2)
  t.match(typo.stderr, /^PL_ERR_ENROL_CODE: not a valid enrolment code: it is damaged/)
})
