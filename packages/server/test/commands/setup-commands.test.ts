import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { decodeEnrolmentCode } from '@porchlight/shared/enrol'
import { loadRelayConfig } from '@porchlight/shared/config'
import { runInit } from '../../src/commands/init.js'
import { runAgentAdd, runAgentAllow, runAgentList, runAgentRemove } from '../../src/commands/agent.js'
import { resolvePkiDir } from '../../src/commands/pki-dir.js'
import { resolveRelayConfig } from '../../src/commands/relay-config.js'
import { isLiveRelay } from '../../src/commands/run-file.js'

const quiet = { out: () => {}, err: () => {} }
function capture(): { out: string[]; err: string[]; io: { out(l: string): void; err(l: string): void } } {
  const out: string[] = []
  const err: string[] = []
  return { out, err, io: { out: (l) => out.push(l), err: (l) => err.push(l) } }
}

t.test('resolvePkiDir: --pki, then -c, then the default relay.yaml, then ./pki', async (t) => {
  const dir = t.testdir()
  for (const sub of ['other', 'nopki']) mkdirSync(join(dir, sub))
  writeFileSync(join(dir, 'relay.yaml'), 'pki: /srv/pki\n')
  writeFileSync(join(dir, 'other/relay.yaml'), 'pki: /opt/pki\n')
  writeFileSync(join(dir, 'nopki/relay.yaml'), 'domain: x.example\n')
  t.equal(await resolvePkiDir({ pki: 'p' }, {}, dir), join(dir, 'p'))
  t.equal(await resolvePkiDir({ config: 'other/relay.yaml' }, {}, dir), '/opt/pki')
  t.equal(await resolvePkiDir({}, {}, dir), '/srv/pki', 'issue 10: ./relay.yaml is found without -c')
  t.equal(await resolvePkiDir({}, { PORCHLIGHT_RELAY_CONFIG: join(dir, 'other/relay.yaml') }, '/'), '/opt/pki')
  const bare = join(dir, 'bare')
  mkdirSync(bare)
  t.equal(await resolvePkiDir({}, {}, bare), join(bare, 'pki'))
  await t.rejects(resolvePkiDir({}, {}, join(dir, 'nopki')), { code: 'PL_ERR_USAGE', message: /has no pki: directory/ })
  await t.rejects(resolveRelayConfig(undefined, {}, bare), { code: 'PL_ERR_CONFIG_READ', message: /pass -c FILE/ })
})

t.test('init writes a config that loads, and never twice', async (t) => {
  const scratch = t.testdir()
  const dir = join(scratch, 'relay')
  const lines: string[] = []
  const result = await runInit({ domain: 'Tunnel.Example.com', dir }, (l) => lines.push(l))
  const { config } = await loadRelayConfig(result.configFile)
  t.equal(config.domain, 'tunnel.example.com')
  t.same(config.listen.agents, { host: '0.0.0.0', port: 7443 })
  t.same(config.listen.admin, { host: '127.0.0.1', port: 7070 })
  t.equal(config.pki, join(dir, 'pki'))
  t.equal(config.state, join(dir, 'state'))
  t.same(config.tls, { cert: join(dir, 'pki/server.crt'), key: join(dir, 'pki/server.key') })
  t.same(config.agents, {})
  t.ok(lines.includes(`  ${result.adminToken}`))
  await t.rejects(runInit({ domain: 'tunnel.example.com', dir }, () => {}), { code: 'PL_ERR_CONFIG_EXISTS' })
  await t.rejects(runInit({ domain: 'not a name', dir: join(scratch, 'a') }, () => {}), { code: 'PL_ERR_USAGE' })
  await t.rejects(runInit({ domain: 'a.example', dir: join(scratch, 'b'), listenAgents: 'nope' }, () => {}), { code: 'PL_ERR_USAGE', message: /--listen-agents/ })

  {
    // agent add, list, allow, remove against that config (no relay running)
    const file = result.configFile
    const add = capture()
    const { code, token } = await runAgentAdd({ config: file, name: 'laptop' }, add.io)
    t.equal(add.out.length, 1, 'one line on stdout')
    t.equal(add.out[0], `porchlight login ${code}`)
    t.ok(add.err.includes('no relay is running for this config; the change applies when it starts'))
    const decoded = decodeEnrolmentCode(code)
    t.equal(decoded.relay, 'wss://tunnel.example.com:7443', 'the URL from domain and listen.agents')
    t.equal(decoded.token, token)
    t.equal(decoded.caSha256?.length, 64, 'the CA fingerprint, since init signed tls.cert with it')
    t.equal(decoded.clientCert, null)
    const { config } = await loadRelayConfig(file)
    t.same(config.agents['laptop']?.hosts, ['*.laptop.tunnel.example.com'], 'default hosts: *.NAME.DOMAIN')
    t.match(readFileSync(file, 'utf8'), /# Who may connect and what each may publish/, 'init\'s comments kept')

    await t.rejects(runAgentAdd({ config: file, name: 'laptop' }, quiet), { code: 'PL_ERR_CONFIG_AGENT_EXISTS' })
    await t.rejects(runAgentAdd({ config: file, name: 'Bad Name' }, quiet), { code: 'PL_ERR_USAGE' })
    await t.rejects(runAgentAdd({ config: file, name: 'x', hosts: ['not a host'] }, quiet), { code: 'PL_ERR_USAGE', message: /--hosts "not a host"/ })
    await t.rejects(runAgentAdd({ config: file, name: 'x', tcpPorts: ['99999'] }, quiet), { code: 'PL_ERR_USAGE', message: /--tcp-ports/ })
    await t.rejects(runAgentAdd({ config: file, name: 'x', relayUrl: 'http://x' }, quiet), { code: 'PL_ERR_USAGE' })

    const allowed = await runAgentAllow({ config: file, name: 'laptop', hosts: ['blog.example.org'], tcpPorts: ['2222', '30000-30010'], outbound: ['smtp.example.com:587'] }, quiet)
    t.same(allowed, { hosts: ['blog.example.org'], tcp_ports: [2222, '30000-30010'], outbound: ['smtp.example.com:587'] })
    await t.rejects(runAgentAllow({ config: file, name: 'laptop' }, quiet), { code: 'PL_ERR_USAGE' })
    const list = capture()
    await runAgentList({ config: file }, list.io)
    t.match(list.out[1], /^laptop +\*\.laptop\.tunnel\.example\.com,blog\.example\.org +2222,30000-30010 +smtp\.example\.com:587 +no$/)

    const withCert = await runAgentAdd({ config: file, name: 'desk', cert: true, days: 30 }, quiet)
    t.ok(decodeEnrolmentCode(withCert.code).clientCert?.key.includes('PRIVATE KEY'))
    t.equal((await loadRelayConfig(file)).config.agents['desk']?.require_cert, true)
    const removed = capture()
    await runAgentRemove({ config: file, name: 'desk' }, removed.io)
    t.match(removed.out.join('\n'), /removed agent desk[\s\S]*revoked its certificate [0-9a-f]+/)
    t.same(Object.keys((await loadRelayConfig(file)).config.agents), ['laptop'])
    await t.rejects(runAgentRemove({ config: file, name: 'desk' }, quiet), { code: 'PL_ERR_CONFIG_AGENT_UNKNOWN' })
  }
})

t.test('agent add: a port-0 listener needs a running relay or --relay-url', async (t) => {
  const dir = t.testdir()
  mkdirSync(join(dir, 'state'))
  writeFileSync(join(dir, 'relay.yaml'), 'listen: { agents: "127.0.0.1:0" }\nstate: state\nagents: {}\n')
  await t.rejects(runAgentAdd({ config: join(dir, 'relay.yaml'), name: 'a' }, quiet), { code: 'PL_ERR_USAGE', message: /port 0/ })
  const { code } = await runAgentAdd({ config: join(dir, 'relay.yaml'), name: 'a', relayUrl: 'ws://127.0.0.1:9999/' }, quiet)
  t.same({ relay: decodeEnrolmentCode(code).relay, ca: decodeEnrolmentCode(code).caSha256 }, { relay: 'ws://127.0.0.1:9999', ca: null })
})

t.test('agent add with listen.agents: shared: wss://DOMAIN, the port only when not 443, no pin', async (t) => {
  const dir = t.testdir()
  mkdirSync(join(dir, 'state'))
  writeFileSync(join(dir, 'site.pem'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')
  const yaml = (address: string): string => `domain: tunnel.example.com\nlisten: { agents: shared, public_tls: { address: "${address}", certs: [{ cert: site.pem, key: site.pem }] } }\nstate: state\nagents: {}\n`
  writeFileSync(join(dir, 'relay.yaml'), yaml('0.0.0.0:443'))
  const on443 = decodeEnrolmentCode((await runAgentAdd({ config: join(dir, 'relay.yaml'), name: 'a' }, quiet)).code)
  t.same({ relay: on443.relay, ca: on443.caSha256 }, { relay: 'wss://tunnel.example.com', ca: null })
  writeFileSync(join(dir, 'relay.yaml'), yaml('0.0.0.0:8443'))
  const on8443 = decodeEnrolmentCode((await runAgentAdd({ config: join(dir, 'relay.yaml'), name: 'b' }, quiet)).code)
  t.equal(on8443.relay, 'wss://tunnel.example.com:8443')
})

t.test('a stale run file never gets a SIGHUP', async (t) => {
  const run = { pid: process.pid, config: '/etc/porchlight/relay.yaml', started_at: '', reloads: 0, agents: '', public: '', admin: null }
  t.equal(isLiveRelay(run, '/elsewhere/relay.yaml'), false, 'another config')
  t.equal(isLiveRelay(run, '/etc/porchlight/relay.yaml'), false, 'a live pid that is not `serve` (this test process)')
  t.equal(isLiveRelay({ ...run, pid: 2 ** 22 + 1 }, '/etc/porchlight/relay.yaml'), false, 'a pid that does not exist')
})
