import { join } from 'node:path'
import t from 'tap'
import { parseAgentConfig, type AgentConfig } from '../../src/config/index.js'
import { failure, writeFiles } from './helpers.js'

const TOKEN = 'k'.repeat(43)
const parse = (value: unknown, baseDir = '/home/u/.config/porchlight', env: NodeJS.ProcessEnv = { HOME: '/home/u' }) =>
  parseAgentConfig(value, 'agent.yaml', baseDir, env)
const base = { relay: 'wss://tunnel.example.com:7443', token: TOKEN }

t.test('relay and token are required; everything else has a default', (t) => {
  t.same(failure(() => parse({})).lines, ['relay: required', 'token: required'])
  const { config, warnings } = parse(base)
  const want: AgentConfig = { relay: 'wss://tunnel.example.com:7443', token: TOKEN, cert: null, ca: null, tunnels: [], inspect: { host: '127.0.0.1', port: 4040 }, inspect_capture: { requests: 500, bytes: 33554432 }, proxy: null }
  t.same(config, want)
  t.same(warnings, [])
  t.end()
})

t.test('the PRODUCT.md example parses to normalised tunnels', (t) => {
  const { config } = parse({
    relay: 'wss://tunnel.example.com:7443',
    token: 'env:PORCHLIGHT_TOKEN',
    cert: '~/.config/porchlight/laptop.pem',
    ca: 'relay-ca.pem',
    tunnels: [
      {
        http: 'Blog', to: 'http://127.0.0.1:80', host_header: 'Blog.Local',
        access: { links: true, basic: { user: 'alice', password_hash: 'scrypt:16384:8:1:c2FsdA:aGFzaA' }, allow_ips: ['203.0.113.0/24'], client_certs: false },
      },
      { http: 'site.example.org', to: 3000, access: {} },
      { tcp: 2222, to: '127.0.0.1:22' },
      { tcp: 0, to: 5432, allow_ips: ['10.0.0.1'], proxy_protocol: 'v2' },
      { forward: '127.0.0.1:2525', to: 'smtp.example.com:587' },
      { forward: 2526, to: '[2001:db8::25]:25' },
    ],
    inspect: 4041,
  }, '/home/u/.config/porchlight', { HOME: '/home/u', PORCHLIGHT_TOKEN: TOKEN })
  t.equal(config.token, TOKEN)
  t.equal(config.cert, '/home/u/.config/porchlight/laptop.pem')
  t.equal(config.ca, '/home/u/.config/porchlight/relay-ca.pem')
  t.same(config.inspect, { host: '127.0.0.1', port: 4041 })
  t.same(config.tunnels, [
    {
      kind: 'http', id: 'blog', http: 'blog', to: 'http://127.0.0.1:80', host_header: 'blog.local',
      access: { links: true, basic: { user: 'alice', password_hash: 'scrypt:16384:8:1:c2FsdA:aGFzaA' }, allow_ips: ['203.0.113.0/24'], client_certs: false },
    },
    { kind: 'http', id: 'site.example.org', http: 'site.example.org', to: 'http://127.0.0.1:3000', host_header: null, access: { links: false, basic: null, allow_ips: [], client_certs: false } },
    { kind: 'tcp', id: 'tcp:2222', tcp: 2222, to: { host: '127.0.0.1', port: 22 }, allow_ips: [], proxy_protocol: null },
    { kind: 'tcp', id: 'tcp:5432', tcp: 0, to: { host: '127.0.0.1', port: 5432 }, allow_ips: ['10.0.0.1/32'], proxy_protocol: 'v2' },
    { kind: 'forward', id: 'forward:2525', forward: { host: '127.0.0.1', port: 2525 }, to: { host: 'smtp.example.com', port: 587 } },
    { kind: 'forward', id: 'forward:2526', forward: { host: '127.0.0.1', port: 2526 }, to: { host: '2001:db8::25', port: 25 } },
  ])
  t.end()
})

t.test('relay URLs: ws(s) kept, http(s) mapped, junk refused', (t) => {
  const good: Array<[string, string]> = [
    ['ws://127.0.0.1:7443', 'ws://127.0.0.1:7443'],
    ['wss://Tunnel.Example.com:7443/', 'wss://tunnel.example.com:7443'],
    ['https://tunnel.example.com', 'wss://tunnel.example.com'],
    ['http://127.0.0.1:7443/base/', 'ws://127.0.0.1:7443/base'],
    ['ws://[::1]:7443', 'ws://[::1]:7443'],
  ]
  for (const [relay, want] of good) t.equal(parse({ ...base, relay }).config.relay, want, relay)
  const bad: Array<[unknown, string]> = [
    ['ftp://x.example.com', 'relay: expected a ws:// or wss:// URL, got "ftp://x.example.com"'],
    ['wss://user:pw@x.example.com', 'relay: credentials do not belong in the relay URL; use token'],
    ['wss://x.example.com/?a=1', 'relay: the relay URL must not have a query or fragment: "wss://x.example.com/?a=1"'],
    ['tunnel.example.com:7443', 'relay: expected a ws:// or wss:// URL, got "tunnel.example.com:7443"'],
    ['not a url', 'relay: "not a url" is not a URL (expected e.g. wss://tunnel.example.com:7443)'],
    [7443, 'relay: expected a ws:// or wss:// URL, got 7443'],
  ]
  for (const [relay, want] of bad) t.same(failure(() => parse({ ...base, relay })).lines, [want], String(relay))
  t.end()
})

t.test('proxy: an http:// proxy URL, false, or absent', (t) => {
  const good: Array<[unknown, string | false | null]> = [
    ['http://proxy.corp:3128', 'http://proxy.corp:3128'],
    ['http://proxy.corp:3128/', 'http://proxy.corp:3128'],
    ['proxy.corp:8080', 'http://proxy.corp:8080'],
    ['http://al%40ice:s3cret@proxy.corp:3128', 'http://al%40ice:s3cret@proxy.corp:3128'],
    [false, false],
    [null, null],
  ]
  for (const [proxy, want] of good) t.equal(parse({ ...base, proxy }).config.proxy, want, String(proxy))
  const bad: Array<[unknown, string]> = [
    ['https://proxy.corp:3128', 'proxy: only http:// proxies are supported (the agent tunnels with CONNECT), got https://'],
    ['socks5://proxy.corp:1080', 'proxy: only http:// proxies are supported (the agent tunnels with CONNECT), got socks5://'],
    ['http://proxy.corp:3128/path', 'proxy: a proxy URL has no path, query or fragment: "proxy.corp:3128"'],
    [3128, 'proxy: expected an http://host:port URL or false, got 3128'],
    [true, 'proxy: expected an http://host:port URL or false, got true'],
  ]
  for (const [proxy, want] of bad) t.same(failure(() => parse({ ...base, proxy })).lines, [want], String(proxy))
  // Credentials in a bad proxy URL never reach the message.
  t.notMatch(failure(() => parse({ ...base, proxy: 'http://u:hunter2@[bad' })).message, /hunter2/)
  t.end()
})

t.test('tunnel issues are named by index and key', (t) => {
  const f = failure(() => parse({
    ...base,
    tunnels: [
      { to: 3000 },
      { http: 'a', tcp: 22, to: 1 },
      { http: 'blog', to: 3000, host_headr: 'blog.local' },
      { http: '*.blog', to: 3000 },
      { http: 'b', to: 3000, access: { basic: { user: 'alice', password: 'hunter2' } } },
      { http: 'c', to: 3000, access: { basic: { user: 'al:ice', password_hash: 'hunter2' }, allow_ips: ['10.0.0.0/40'] } },
      { tcp: 2222, to: 22, proxy_protocol: 'v3' },
      { tcp: 70000, to: ':22' },
      { forward: 2525, to: 587 },
      'http: x',
    ],
  }))
  t.same(f.lines, [
    'tunnels[0]: a tunnel needs one of http, tcp or forward',
    'tunnels[1]: a tunnel has exactly one of http, tcp or forward, not http and tcp',
    'tunnels[2].host_headr: unknown key "host_headr" (did you mean "host_header"?)',
    'tunnels[3].http: wildcards cannot be published: "*.blog"',
    'tunnels[4].access.basic.password_hash: required',
    'tunnels[4].access.basic.password: unknown key "password" (did you mean "password_hash"?)',
    'tunnels[5].access.basic.user: a basic-auth user name cannot contain ":" or control characters',
    'tunnels[5].access.basic.password_hash: expected a hash from `porchlight hash-password` ("scrypt:..."), never a plain password',
    'tunnels[5].access.allow_ips[0]: invalid prefix length in "10.0.0.0/40" (0-32)',
    'tunnels[6].proxy_protocol: must be one of "v1", "v2", got "v3"',
    'tunnels[7].tcp: port 70000 is out of range 0-65535',
    'tunnels[7].to: missing host in ":22" (write "127.0.0.1:22" or just "22")',
    'tunnels[8].to: expected "host:port" (the relay dials it), got 587',
    'tunnels[9]: expected a mapping with one of http, tcp or forward, got "http: x"',
  ])
  t.end()
})

t.test('tunnel ids must be distinct', (t) => {
  const f = failure(() => parse({
    ...base,
    tunnels: [
      { http: 'blog', to: 3000 },
      { http: 'BLOG.', to: 3001 },
      { tcp: 0, to: 22 },
      { tcp: 22, to: 2222 },
      { forward: 2525, to: 'a.example.com:25' },
      { forward: '127.0.0.1:4040', to: 'b.example.com:25' },
    ],
  }))
  t.same(f.lines, [
    'tunnels[1]: duplicate tunnel "blog" (same as tunnels[0])',
    'tunnels[3]: duplicate tunnel "tcp:22" (same as tunnels[2])',
    'tunnels[5].forward: port 4040 is also used by inspect',
  ])
  t.end()
})

t.test('warnings: exposed forward, clear-text relay, short token', (t) => {
  const { warnings } = parse({
    relay: 'ws://tunnel.example.com:7443',
    token: 'short',
    tunnels: [{ forward: ':2525', to: 'smtp.example.com:587' }],
  })
  t.same(warnings, [
    'tunnels[0].forward: listening on 0.0.0.0:2525 lets other machines send through the relay; use 127.0.0.1',
    'relay: ws://tunnel.example.com:7443 is not encrypted, so the token crosses the network in clear text; use wss://',
    'token: shorter than 32 characters; use one from `porchlight-relay token new NAME`',
  ])
  t.same(parse({ ...base, relay: 'ws://127.0.0.1:7443', inspect: false }).warnings, [], 'loopback ws:// is fine')
  t.equal(parse({ ...base, inspect: false }).config.inspect, null)
  t.end()
})

t.test('the inspector (no authentication) must stay on loopback', (t) => {
  t.same(failure(() => parse({ ...base, inspect: '0.0.0.0:4040' })).lines,
    ['inspect: must be a loopback address such as 127.0.0.1:4040 (the status API has no authentication), got 0.0.0.0:4040'])
  t.same(parse({ ...base, inspect: '[::1]:4040' }).config.inspect, { host: '::1', port: 4040 })
  t.same(parse({ ...base, inspect: 'localhost:0' }).config.inspect, { host: 'localhost', port: 0 })
  t.end()
})

t.test('token secrets: env:, file:, literal', (t) => {
  const dir = writeFiles(t.testdir(), { 'token.txt': `  ${TOKEN}\n`, 'empty.txt': '\n' })
  t.equal(parse({ ...base, token: 'file:token.txt' }, dir).config.token, TOKEN, 'file: is relative to the config, trimmed')
  t.equal(parse({ ...base, token: `file:${join(dir, 'token.txt')}` }, '/').config.token, TOKEN)
  t.equal(parse({ ...base, token: 'env:T' }, dir, { T: TOKEN }).config.token, TOKEN)
  const cases: Array<[unknown, NodeJS.ProcessEnv, string]> = [
    ['env:T', {}, 'cannot resolve secret token (env:T): environment variable T is not set'],
    ['env:T', { T: '' }, 'cannot resolve secret token (env:T): environment variable T is not set'],
    ['file:nope.txt', {}, `cannot resolve secret token (file:nope.txt): ${join(dir, 'nope.txt')} does not exist`],
    ['file:empty.txt', {}, `cannot resolve secret token (file:empty.txt): ${join(dir, 'empty.txt')} is empty`],
    ['env:T', { T: `${TOKEN}\n` }, 'cannot resolve secret token (env:T): the token contains spaces or control characters'],
  ]
  for (const [token, env, want] of cases) {
    const f = failure(() => parse({ ...base, token }, dir, env))
    t.equal(f.code, 'PL_ERR_CONFIG_SECRET', want)
    t.equal(f.message, want)
  }
  t.same(failure(() => parse({ ...base, token: 'file:' })).lines, ['token: "file:" needs a path'])
  t.same(failure(() => parse({ ...base, token: '' })).lines, ['token: expected a secret (literal, env:NAME or file:/path), got an empty string'])
  t.end()
})

t.test('secret values never appear in errors', (t) => {
  const f = failure(() => parse({ ...base, token: 'env:T' }, '/', { T: 'sekrit value with spaces' }))
  t.equal(f.code, 'PL_ERR_CONFIG_SECRET')
  t.notMatch(f.message, /sekrit/)
  t.end()
})

t.test('the result is deep-frozen', (t) => {
  const { config } = parse({ ...base, tunnels: [{ tcp: 2222, to: 22 }] })
  t.ok(Object.isFrozen(config.tunnels))
  t.ok(Object.isFrozen(config.tunnels[0]))
  t.throws(() => { (config.tunnels[0] as { id: string }).id = 'x' }, TypeError)
  t.end()
})
