import { chmodSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parseRelayConfig, RELAY_DEFAULTS, type RelayConfig } from '../../src/config/index.js'
import { failure, HASH_A, PEM, writeFiles } from './helpers.js'

const parse = (value: unknown, baseDir = '/nonexistent', env: NodeJS.ProcessEnv = {}) => parseRelayConfig(value, 'relay.yaml', baseDir, env)
const agent = { laptop: { token_sha256: HASH_A } }

t.test('an empty document gets every default', (t) => {
  const { config, warnings } = parse(null)
  const want: RelayConfig = {
    domain: 'localhost',
    listen: { public: { host: '0.0.0.0', port: 80 }, public_tls: null, agents: { host: '0.0.0.0', port: 7443 }, admin: { host: '127.0.0.1', port: 7070 }, peer: null, public_proxy_protocol: false },
    tls: null,
    pki: null,
    state: null,
    admin_token_sha256: null,
    trust_proxy: [],
    acme: null,
    redirect_http: false,
    heartbeat: { interval_ms: 10_000, timeout_ms: 20_000 },
    limits: { max_streams_per_agent: 1024, origin_timeout_ms: 60_000, headers_timeout_ms: 15_000, request_timeout_ms: 120_000, stall_timeout_ms: 60_000, max_body_bytes: null, max_connections_per_ip: 256 },
    agents: {},
    cluster: null,
  }
  t.same(config, want)
  t.equal(RELAY_DEFAULTS.heartbeat.interval_ms, 10_000)
  t.same(warnings, [
    'listen.agents: agents connect to 0.0.0.0:7443 without TLS, so tokens cross the network unencrypted; set tls',
    'agents: no agents are configured, so no agent can connect',
  ])
  t.end()
})

t.test('every key is validated and normalised', (t) => {
  const dir = writeFiles(t.testdir(), { 'tls/agents.crt': PEM, 'tls/agents.key': PEM, 'tls/wild.pem': PEM, 'tls/wild.key': PEM })
  const { config, warnings } = parse({
    domain: 'Tunnel.Example.COM.',
    listen: { public: ':80', public_tls: { address: '[::]:443', certs: [{ cert: 'tls/wild.pem', key: join(dir, 'tls/wild.key') }] }, agents: '0.0.0.0:7443', admin: '127.0.0.1:7070' },
    tls: { cert: 'tls/agents.crt', key: 'tls/agents.key' },
    pki: 'pki',
    state: '/var/lib/porchlight/state',
    admin_token_sha256: 'B'.repeat(64),
    trust_proxy: ['10.0.0.0/8', '192.0.2.1'],
    acme: { email: 'ops@example.com' },
    redirect_http: true,
    heartbeat: { interval_ms: 5000, timeout_ms: 15_000 },
    limits: { max_body_bytes: 10_485_760 },
    agents: {
      laptop: {
        token_sha256: HASH_A,
        require_cert: true,
        hosts: ['*.Laptop.Example.com', 'blog.example.org.'],
        tcp_ports: [2222, '30000-30100'],
        outbound: ['smtp.example.com:587', '[::1]:25'],
      },
    },
  }, dir)
  t.equal(config.domain, 'tunnel.example.com')
  t.same(config.listen.public_tls, { address: { host: '::', port: 443 }, certs: [{ cert: join(dir, 'tls/wild.pem'), key: join(dir, 'tls/wild.key') }] })
  t.same(config.tls, { cert: join(dir, 'tls/agents.crt'), key: join(dir, 'tls/agents.key') })
  t.equal(config.pki, join(dir, 'pki'))
  t.equal(config.state, '/var/lib/porchlight/state')
  t.equal(config.admin_token_sha256, 'b'.repeat(64))
  t.same(config.trust_proxy, ['10.0.0.0/8', '192.0.2.1/32'])
  t.same(config.acme, {
    directory: 'https://acme-v02.api.letsencrypt.org/directory', email: 'ops@example.com', names: [], challenge: 'auto',
    dns_hook: null, directory_ca: null, renew_before_expiry_s: null, max_orders_per_hour: 30,
  })
  t.same(config.heartbeat, { interval_ms: 5000, timeout_ms: 15_000 })
  t.equal(config.limits.max_body_bytes, 10_485_760)
  t.equal(config.limits.max_streams_per_agent, 1024, 'untouched limits keep defaults')
  t.same(config.agents['laptop'], {
    token_sha256: HASH_A,
    require_cert: true,
    hosts: ['*.laptop.example.com', 'blog.example.org'],
    tcp_ports: [{ from: 2222, to: 2222 }, { from: 30000, to: 30100 }],
    outbound: ['smtp.example.com:587', '[::1]:25'],
  })
  t.same(warnings, [])
  t.end()
})

t.test('unknown keys at any depth name the key and suggest the right one (SECURITY H2)', (t) => {
  const f = failure(() => parse({
    listen_adress: ':443',
    listen: { pubilc: ':80' },
    limits: { max_stream_per_agent: 5 },
    agents: { laptop: { token_sha256: HASH_A, hostz: [] } },
    frobnicate: true,
  }))
  t.equal(f.code, 'PL_ERR_CONFIG_INVALID')
  t.same(f.lines, [
    'listen_adress: unknown key "listen_adress" (did you mean "listen"?)',
    'frobnicate: unknown key "frobnicate"',
    'listen.pubilc: unknown key "pubilc" (did you mean "public"?)',
    'limits.max_stream_per_agent: unknown key "max_stream_per_agent" (did you mean "max_streams_per_agent"?)',
    'agents.laptop.hostz: unknown key "hostz" (did you mean "hosts"?)',
  ])
  t.end()
})

t.test('wrong types say what was expected and what was found', (t) => {
  const f = failure(() => parse({
    domain: 5,
    listen: { public: 80, admin: true },
    redirect_http: 'yes',
    heartbeat: { interval_ms: '10s' },
    limits: { max_body_bytes: -1, origin_timeout_ms: 1.5 },
    trust_proxy: '10.0.0.0/8',
    agents: [],
  }))
  t.same(f.lines, [
    'domain: expected a DNS name like tunnel.example.com, got 5',
    'listen.public: expected "host:port", got 80',
    'listen.admin: expected "host:port" or false, got true',
    'trust_proxy: expected a list, got "10.0.0.0/8"',
    'redirect_http: expected true or false, got "yes"',
    'heartbeat.interval_ms: expected a number, got "10s"',
    'limits.origin_timeout_ms: expected a whole number, got 1.5',
    'limits.max_body_bytes: must be at least 1',
    'agents: expected a mapping, got a list',
  ])
  t.end()
})

t.test('a config with three problems lists exactly three lines', (t) => {
  const f = failure(() => parse({
    listen: { public: '127.0.0.1:70000' },
    heartbeat: { timeout_ms: -5 },
    agents: { laptop: { token_sha256: HASH_A, hosts: ['ok.example.com', 'bad host'] } },
  }))
  t.equal(f.message, [
    'config relay.yaml is invalid:',
    'listen.public: port 70000 is out of range 0-65535',
    'heartbeat.timeout_ms: must be at least 50',
    'agents.laptop.hosts[1]: invalid hostname pattern "bad host" (an exact name or "*." followed by a name)',
  ].join('\n'))
  t.equal(f.lines.length, 3)
  t.end()
})

t.test('rules across keys (SECURITY H3, H6)', (t) => {
  const cases: Array<[string, unknown, string[]]> = [
    ['admin on every interface without a token', { listen: { admin: ':7070' }, agents: agent },
      ['listen.admin: admin listener on 0.0.0.0:7070 is reachable from other machines; set admin_token_sha256 or bind 127.0.0.1']],
    ['heartbeat timeout below interval', { heartbeat: { interval_ms: 10_000, timeout_ms: 5000 }, agents: agent },
      ['heartbeat.timeout_ms: must be at least heartbeat.interval_ms (10000), got 5000']],
    ['headers timeout above request timeout', { limits: { headers_timeout_ms: 60_000, request_timeout_ms: 30_000 }, agents: agent },
      ['limits.headers_timeout_ms: must not exceed limits.request_timeout_ms (30000), got 60000']],
    ['client certs without tls or pki', { agents: { laptop: { token_sha256: HASH_A, require_cert: true } } },
      ['agents.laptop.require_cert: client certificates need TLS on the agents listener; set tls',
        'agents.laptop.require_cert: client certificates are checked against the CA in pki; set pki']],
    ['public_tls without certificates or acme', { listen: { public_tls: { address: ':443' } }, agents: agent },
      ['listen.public_tls.certs: needs at least one { cert, key } unless acme is set']],
    ['acme without public_tls', { acme: { email: 'a@b.example' }, state: '/s', agents: agent },
      ['acme: acme certificates are served on listen.public_tls; set listen.public_tls (address: 0.0.0.0:443)']],
    ['redirect without https', { redirect_http: true, agents: agent }, ['redirect_http: redirecting to https needs listen.public_tls']],
    ['two listeners on one port', { listen: { public: '127.0.0.1:8080', agents: ':8080' }, agents: agent },
      ['listen.agents: 0.0.0.0:8080 overlaps listen.public (127.0.0.1:8080)']],
    ['duplicate hosts and outbound', { agents: { laptop: { token_sha256: HASH_A, hosts: ['a.test', 'A.test.'], outbound: ['x.test:25', 'x.test:25'] } } },
      ['agents.laptop.hosts[1]: duplicate of hosts[0] ("a.test")', 'agents.laptop.outbound[1]: duplicate of outbound[0] ("x.test:25")']],
  ]
  for (const [name, value, want] of cases) t.same(failure(() => parse(value)).lines, want, name)
  t.doesNotThrow(() => parse({ listen: { admin: ':7070' }, admin_token_sha256: HASH_A, agents: agent }), 'a token makes a public admin listener acceptable')
  t.doesNotThrow(() => parse({ listen: { public: '127.0.0.1:0', agents: '127.0.0.1:0', admin: '127.0.0.1:0' }, agents: agent }), 'port 0 never clashes')
  t.end()
})

t.test('acme: every key is checked, and what each challenge needs (issue 12)', (t) => {
  const dir = writeFiles(t.testdir(), { 'hook.sh': '#!/bin/sh\n', 'plain.sh': '#!/bin/sh\n', 'ca.pem': PEM })
  chmodSync(join(dir, 'hook.sh'), 0o755)
  const tlsListen = { public_tls: { address: ':443' } }
  const base = { listen: tlsListen, state: 'state', agents: agent }
  const ok = parse({ ...base, acme: { email: 'ops@example.com', names: ['*.Tunnel.Example.com', 'www.example.com'], dns_hook: 'hook.sh', directory_ca: 'ca.pem', challenge: 'tls-alpn-01', renew_before_expiry_s: 600, max_orders_per_hour: 5 } }, dir)
  t.same(ok.config.acme, {
    directory: 'https://acme-v02.api.letsencrypt.org/directory', email: 'ops@example.com', names: ['*.tunnel.example.com', 'www.example.com'],
    challenge: 'tls-alpn-01', dns_hook: join(dir, 'hook.sh'), directory_ca: join(dir, 'ca.pem'), renew_before_expiry_s: 600, max_orders_per_hour: 5,
  })
  t.ok(ok.warnings.some((w) => w.startsWith('acme.challenge: tls-alpn-01 is checked on port 443')) === false, 'port 443: no warning')
  t.doesNotThrow(() => parse({ ...base, acme: { email: 'a@b.example', directory: 'http://127.0.0.1:14000/dir' } }, dir), 'plain http on loopback (a test CA)')
  const cases: Array<[string, unknown, string[]]> = [
    ['plain http directory', { ...base, acme: { email: 'a@b.example', directory: 'http://acme.example.com/dir' } },
      ['acme.directory: expected an https:// URL (plain http only on a loopback address), got "http://acme.example.com/dir"']],
    ['bad email, challenge and hook', { ...base, acme: { email: 'nobody', challenge: 'dns-02', dns_hook: 'plain.sh' } },
      ['acme.email: "nobody" is not an email address', 'acme.challenge: expected auto, http-01, tls-alpn-01 or dns-01', `acme.dns_hook: not executable: ${join(dir, 'plain.sh')} (chmod +x it)`]],
    ['missing hook file', { ...base, acme: { email: 'a@b.example', dns_hook: 'nope.sh' } }, [`acme.dns_hook: file not found: ${join(dir, 'nope.sh')}`]],
    ['wildcard without a hook', { ...base, acme: { email: 'a@b.example', names: ['*.t.example.com', 'x.example.com', 'x.example.com'] } },
      ['acme.names[0]: *.t.example.com: a wildcard certificate needs the dns-01 challenge; set acme.dns_hook', 'acme.names[2]: duplicate of names[1] ("x.example.com")']],
    ['dns-01 without a hook', { ...base, acme: { email: 'a@b.example', challenge: 'dns-01' } },
      ['acme.dns_hook: challenge dns-01 needs dns_hook (an executable run as `HOOK present|cleanup FQDN VALUE`)']],
    ['no state', { listen: tlsListen, agents: agent, acme: { email: 'a@b.example' } }, ['acme: the ACME account key and certificates are kept in state; set state']],
    ['unknown key', { ...base, acme: { email: 'a@b.example', name: [] } }, ['acme.name: unknown key "name" (did you mean "names"?)']],
  ]
  for (const [name, value, want] of cases) t.same(failure(() => parse(value, dir)).lines, want, name)
  const http = parse({ ...base, listen: { public: ':8080', ...tlsListen }, acme: { email: 'a@b.example', challenge: 'http-01' } }, dir)
  t.ok(http.warnings.includes('acme.challenge: http-01 is checked on port 80; listen.public is 0.0.0.0:8080, so forward port 80 to it'))
  t.end()
})

t.test('listen.agents: shared rides on public_tls, and only in that form shares its port', (t) => {
  const dir = writeFiles(t.testdir(), { 'site.pem': PEM, 'site.key': PEM, 'server.pem': PEM })
  const publicTls = { address: ':443', certs: [{ cert: 'site.pem', key: 'site.key' }] }
  const shared = parse({ listen: { agents: 'shared', public_tls: publicTls }, pki: 'pki', agents: { laptop: { token_sha256: HASH_A, require_cert: true } } }, dir)
  t.equal(shared.config.listen.agents, 'shared')
  t.same(shared.warnings, [], 'require_cert needs pki, not tls, on the shared port')
  t.same(failure(() => parse({ listen: { agents: 'shared' }, agents: agent }, dir)).lines,
    ['listen.agents: "shared" puts the agents\' endpoint on listen.public_tls; set listen.public_tls (address: 0.0.0.0:443)'])
  t.same(failure(() => parse({ listen: { agents: ':443', public_tls: publicTls }, agents: agent }, dir)).lines,
    ['listen.public_tls.address: 0.0.0.0:443 overlaps listen.agents (0.0.0.0:443)'], 'the same port as two listeners is still refused')
  t.match(parse({ listen: { agents: 'shared', public_tls: publicTls }, tls: { cert: 'server.pem', key: 'server.pem' }, agents: agent }, dir).warnings,
    [/^tls: unused with listen.agents: shared/])
  t.match(failure(() => parse({ listen: { agents: 'Shared' }, agents: agent }, dir)).lines, [/^listen\.agents: /])
  t.end()
})

t.test('relay TLS files must exist and hold PEM when the config is loaded', (t) => {
  const dir = writeFiles(t.testdir(), { 'good.pem': PEM, 'empty.pem': '', 'sub/x': 'x' })
  const f = failure(() => parse({ tls: { cert: 'missing.crt', key: 'empty.pem' }, listen: { public_tls: { certs: [{ cert: 'good.pem', key: 'sub' }] } }, agents: agent }, dir))
  t.same(f.lines, [
    `listen.public_tls.certs[0].key: not a regular file: ${join(dir, 'sub')}`,
    `tls.cert: file not found: ${join(dir, 'missing.crt')}`,
    `tls.key: no PEM block in ${join(dir, 'empty.pem')}`,
  ])
  t.end()
})

t.test('env: and file: hashes are resolved after validation', (t) => {
  const dir = writeFiles(t.testdir(), { 'admin.sha256': `${'C'.repeat(64)}\n` })
  const { config } = parse({ admin_token_sha256: 'file:admin.sha256', agents: { laptop: { token_sha256: 'env:LAPTOP_SHA' } } }, dir, { LAPTOP_SHA: 'D'.repeat(64) })
  t.equal(config.admin_token_sha256, 'c'.repeat(64))
  t.equal(config.agents['laptop']?.token_sha256, 'd'.repeat(64))
  const missing = failure(() => parse({ agents: { laptop: { token_sha256: 'env:NOPE' } } }, dir, {}))
  t.equal(missing.code, 'PL_ERR_CONFIG_SECRET')
  t.equal(missing.message, 'cannot resolve secret agents.laptop.token_sha256 (env:NOPE): environment variable NOPE is not set')
  const notHex = failure(() => parse({ agents: { laptop: { token_sha256: 'env:H' } } }, dir, { H: 'not-a-hash' }))
  t.equal(notHex.message, 'cannot resolve secret agents.laptop.token_sha256 (env:H): expected 64 hex characters (a SHA-256)')
  t.equal(failure(() => parse({ agents: { laptop: { token_sha256: 'env:1BAD' } } })).lines[0], 'agents.laptop.token_sha256: invalid environment variable name in "env:1BAD"')
  t.end()
})

t.test('agent names are restricted', (t) => {
  const f = failure(() => parse({ agents: { 'Bad Name': { token_sha256: HASH_A }, ok_name: { token_sha256: HASH_A }, ['x'.repeat(64)]: { token_sha256: HASH_A } } }))
  t.same(f.lines, [
    'agents["Bad Name"]: invalid name "Bad Name": use 1-63 lowercase letters, digits, "-" or "_", starting with a letter or digit',
    `agents.${'x'.repeat(64)}: invalid name "${'x'.repeat(64)}": use 1-63 lowercase letters, digits, "-" or "_", starting with a letter or digit`,
  ])
  t.end()
})

t.test('non-mapping documents and prototype keys', (t) => {
  t.same(failure(() => parse('hello')).lines, ['(root): expected a mapping of keys, got "hello"'])
  t.same(failure(() => parse([1])).lines, ['(root): expected a mapping of keys, got a list'])
  const hostile = JSON.parse('{"__proto__": {"polluted": 1}, "agents": {"__proto__": {"token_sha256": "x"}}}') as unknown
  const f = failure(() => parse(hostile))
  t.equal(f.code, 'PL_ERR_CONFIG_INVALID')
  t.same(f.lines, [
    '__proto__: key "__proto__" is not allowed',
    'agents.__proto__: key "__proto__" is not allowed',
  ])
  t.equal(({} as Record<string, unknown>)['polluted'], undefined)
  t.end()
})

t.test('warnings do not stop loading', (t) => {
  const { warnings } = parse({
    listen: { public: ':80', agents: '127.0.0.1:7443' },
    trust_proxy: ['0.0.0.0/0'],
    agents: { laptop: { token_sha256: HASH_A, tcp_ports: ['1-1024'] } },
  })
  t.same(warnings, [
    'trust_proxy: 0.0.0.0/0 believes X-Forwarded-For from every address',
    'agents.laptop.tcp_ports: 1-1024 includes listen.public port 80, which the relay itself uses',
  ])
  t.end()
})

t.test('the result is deep-frozen', (t) => {
  const { config } = parse({ agents: { laptop: { token_sha256: HASH_A, hosts: ['a.test'] } } })
  t.ok(Object.isFrozen(config))
  t.ok(Object.isFrozen(config.listen.public))
  t.ok(Object.isFrozen(config.agents['laptop']?.hosts))
  t.throws(() => { (config.agents['laptop']!.hosts as string[]).push('b.test') }, TypeError)
  t.throws(() => { (config as { domain: string }).domain = 'evil.test' }, TypeError)
  t.equal(config.domain, 'localhost')
  t.end()
})
