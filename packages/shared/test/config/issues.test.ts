import t from 'tap'
import { formatIssues, formatPath } from '../../src/config/index.js'
import { editDistance, suggestKey } from '../../src/config/suggest.js'

t.test('formatPath names keys the way the user wrote them', (t) => {
  const cases: Array<[Array<string | number>, string]> = [
    [['agents', 'laptop', 'hosts', 1], 'agents.laptop.hosts[1]'],
    [['agents', 'my-laptop', 'tcp_ports', 0], 'agents.my-laptop.tcp_ports[0]'],
    [['tunnels', 2, 'access', 'basic', 'user'], 'tunnels[2].access.basic.user'],
    [['agents', 'Bad Name'], 'agents["Bad Name"]'],
    [['agents', 'a.b'], 'agents["a.b"]'],
    [[], '(root)'],
  ]
  for (const [path, want] of cases) t.equal(formatPath(path), want, want)
  t.end()
})

t.test('formatIssues prints one `path: message` line per issue', (t) => {
  t.equal(formatIssues([{ path: 'a', message: 'x' }, { path: 'b[0]', message: 'y' }]), 'a: x\nb[0]: y')
  t.equal(formatIssues([]), '')
  t.end()
})

t.test('did-you-mean suggestions', (t) => {
  const relayKeys = ['domain', 'listen', 'tls', 'pki', 'state', 'admin_token_sha256', 'trust_proxy', 'acme', 'redirect_http', 'heartbeat', 'limits', 'agents']
  const cases: Array<[string, readonly string[], string | undefined]> = [
    ['listen_adress', relayKeys, 'listen'],
    ['domian', relayKeys, 'domain'],
    ['Agents', relayKeys, 'agents'],
    ['admin_token', relayKeys, 'admin_token_sha256'],
    ['trusted_proxies', relayKeys, 'trust_proxy'],
    ['redirect_https', relayKeys, 'redirect_http'],
    ['tcp_port', ['token_sha256', 'require_cert', 'hosts', 'tcp_ports', 'outbound'], 'tcp_ports'],
    ['host', ['token_sha256', 'require_cert', 'hosts', 'tcp_ports', 'outbound'], 'hosts'],
    ['zzzzzz', relayKeys, undefined],
    ['x', relayKeys, undefined],
  ]
  for (const [typed, known, want] of cases) t.equal(suggestKey(typed, known), want, typed)
  t.equal(editDistance('kitten', 'sitting'), 3)
  t.equal(editDistance('', 'abc'), 3)
  t.end()
})
