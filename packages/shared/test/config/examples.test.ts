import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { loadAgentConfig, loadRelayConfig } from '../../src/config/index.js'
import { PEM, writeFiles } from './helpers.js'
import { everyKey } from './example-blocks.js'

/** deploy/examples/*.yaml must always load, so they never rot (STYLE.md, Config). */
const examples = fileURLToPath(new URL('../../../../deploy/examples/', import.meta.url))
const TOKEN = 'x'.repeat(43)

/** Copies an example into a private directory (mode 600, like an installed config). */
function install(dir: string, name: string, extra: Record<string, string> = {}): string {
  writeFiles(dir, { [name]: readFileSync(join(examples, name), 'utf8'), ...extra })
  return join(dir, name)
}

t.test('relay.yaml as copied passes check: install.md step 3 (issue 10)', async (t) => {
  // Before the fix the example named TLS files nobody has, so a fresh copy failed `check`.
  const { config, warnings } = await loadRelayConfig(install(t.testdir(), 'relay.yaml'))
  t.same(warnings, ['listen.agents: agents connect to 0.0.0.0:7443 without TLS, so tokens cross the network unencrypted; set tls'])
  t.equal(config.domain, 'tunnel.example.com')
  t.equal(config.tls, null)
  t.equal(config.listen.public_tls, null)
  t.same(config.agents['laptop']?.hosts, ['*.laptop.tunnel.example.com', 'blog.example.org'])
})

t.test('relay.yaml: every key, loaded with its TLS blocks uncommented and files present', async (t) => {
  const dir = t.testdir()
  const text = everyKey(readFileSync(join(examples, 'relay.yaml'), 'utf8'))
  writeFiles(dir, { 'relay.yaml': text, 'tls/wildcard.pem': PEM, 'tls/wildcard.key': PEM, 'tls/agents.crt': PEM, 'tls/agents.key': PEM, 'cluster.secret': 'c'.repeat(64) })
  writeFiles(dir, { 'acme/dns-hook': '#!/bin/sh\n' }, 0o700)
  const file = join(dir, 'relay.yaml')
  const { config, warnings } = await loadRelayConfig(file)
  t.same(warnings, [])
  t.equal(config.domain, 'tunnel.example.com')
  t.same(config.listen.public_tls?.certs, [{ cert: join(dir, 'tls/wildcard.pem'), key: join(dir, 'tls/wildcard.key') }])
  t.same(config.tls, { cert: join(dir, 'tls/agents.crt'), key: join(dir, 'tls/agents.key') })
  t.equal(config.pki, '/var/lib/porchlight/pki')
  t.equal(config.redirect_http, true)
  t.equal(config.acme?.email, 'ops@example.com')
  t.equal(config.agents['laptop']?.require_cert, true)
  t.same(config.agents['laptop']?.tcp_ports, [{ from: 2222, to: 2222 }, { from: 30000, to: 30100 }])
  t.same(config.agents['laptop']?.hosts, ['*.laptop.tunnel.example.com', 'blog.example.org'])
  // Without the TLS files the same config fails, naming each missing file.
  const bareDir = t.testdir()
  writeFiles(bareDir, { 'relay.yaml': text })
  const bare = await loadRelayConfig(join(bareDir, 'relay.yaml')).then(() => null, (err: { code: string; details: Array<{ path: string }> }) => err)
  t.equal(bare?.code, 'PL_ERR_CONFIG_INVALID')
  t.same(bare?.details.map((i) => i.path), ['listen.public_tls.certs[0].cert', 'listen.public_tls.certs[0].key', 'tls.cert', 'tls.key', 'acme.dns_hook', 'acme.directory_ca', 'cluster.secret_file'])
  t.equal(config.cluster?.id, 'r1')
  t.same(config.listen.peer, { host: '10.0.0.1', port: 7444 })
  t.equal(config.listen.public_proxy_protocol, true)
})

t.test('relay-minimal.yaml loads with only the plain-ws warning', async (t) => {
  const { config, warnings } = await loadRelayConfig(install(t.testdir(), 'relay-minimal.yaml'))
  t.same(Object.keys(config.agents), ['laptop'])
  t.same(config.listen.admin, { host: '127.0.0.1', port: 7070 })
  t.same(warnings, ['listen.agents: agents connect to 0.0.0.0:7443 without TLS, so tokens cross the network unencrypted; set tls'])
})

t.test('agent.yaml: every key, token from the environment, cert not needed at load time', async (t) => {
  const { config, warnings } = await loadAgentConfig(install(t.testdir(), 'agent.yaml'), { PORCHLIGHT_TOKEN: TOKEN, HOME: '/home/alice' })
  t.same(warnings, [])
  t.equal(config.relay, 'wss://tunnel.example.com:7443')
  t.equal(config.token, TOKEN)
  t.equal(config.cert, '/home/alice/.config/porchlight/laptop.pem')
  t.equal(config.ca, '/home/alice/.config/porchlight/relay-ca.pem')
  t.same(config.tunnels.map((x) => x.id), ['blog', 'tcp:2222', 'forward:2525'])
  t.same(config.inspect, { host: '127.0.0.1', port: 4040 })
})

t.test('agent-homeserver.yaml: sites, ssh and smtp', async (t) => {
  const dir = t.testdir()
  const file = install(dir, 'agent-homeserver.yaml', { 'agent.token': `${TOKEN}\n` })
  const { config, warnings } = await loadAgentConfig(file, {})
  t.same(warnings, [])
  t.equal(config.token, TOKEN)
  t.same(config.tunnels.map((x) => x.id), ['photos.example.org', 'wiki', 'tcp:2222', 'forward:2525'])
  t.same(config.tunnels[0], {
    kind: 'http', id: 'photos.example.org', http: 'photos.example.org', to: 'http://127.0.0.1:80', host_header: 'photos.local',
    access: { links: false, basic: { user: 'family', password_hash: 'scrypt:16384:8:1:c2FsdHNhbHRzYWx0:aGFzaGhhc2hoYXNoaGFzaA' }, allow_ips: [], client_certs: false },
  })
})
