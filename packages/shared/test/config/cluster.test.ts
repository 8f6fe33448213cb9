import { join } from 'node:path'
import t from 'tap'
import { parseRelayConfig } from '../../src/config/index.js'
import { failure, HASH_A, PEM, writeFiles } from './helpers.js'

const parse = (value: unknown, baseDir: string) => parseRelayConfig(value, 'relay.yaml', baseDir, {})
const agents = { laptop: { token_sha256: HASH_A } }
const SECRET = `${'ab'.repeat(32)}\n`

function member(_dir: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    listen: { public: '127.0.0.11:8080', agents: '127.0.0.11:7443', admin: '127.0.0.11:7070', peer: '127.0.0.11:7444' },
    agents,
    cluster: { id: 'r1', redis: 'redis://127.0.0.1:6379', secret_file: 'cluster.secret', advertise: { agents: 'ws://127.0.0.11:7443', peer: 'http://127.0.0.11:7444' }, ...extra },
  }
}

t.test('no cluster key: single relay, no peer listener', (t) => {
  const { config } = parse({ agents }, '/nonexistent')
  t.equal(config.cluster, null)
  t.equal(config.listen.peer, null)
  t.equal(config.listen.public_proxy_protocol, false)
  t.end()
})

t.test('a member: defaults filled in, paths resolved', (t) => {
  const dir = writeFiles(t.testdir(), { 'cluster.secret': SECRET })
  const { config } = parse(member(dir), dir)
  t.same(config.cluster, {
    id: 'r1',
    redis: 'redis://127.0.0.1:6379',
    secret_file: join(dir, 'cluster.secret'),
    advertise: { agents: 'ws://127.0.0.11:7443', peer: 'http://127.0.0.11:7444' },
    max_staleness_ms: 5000,
    drain_delay_ms: 2000,
    lease_ttl_ms: 10000,
    peer_tls: null,
  })
  t.same(config.listen.peer, { host: '127.0.0.11', port: 7444 })
  t.end()
})

t.test('bad cluster values: one line each, PL_ERR_CONFIG_INVALID', (t) => {
  const dir = writeFiles(t.testdir(), { 'short.secret': 'tooshort\n' })
  const f = failure(() => parse({
    listen: { peer: '127.0.0.11:7444' },
    agents,
    cluster: { id: 'R 1', redis: 'http://x', secret_file: 'short.secret', advertise: { agents: 'http://a', peer: 'ftp://b' }, max_staleness_ms: 10, lease_ttl_ms: 50, extra: 1 },
  }, dir))
  t.equal(f.code, 'PL_ERR_CONFIG_INVALID')
  t.same(f.lines.sort(), [
    'cluster.extra: unknown key "extra"',
    'cluster.advertise.agents: expected a ws:// or wss:// URL agents dial, got "http://a"',
    'cluster.advertise.peer: expected an http:// or https:// URL of listen.peer as other relays reach it, got "ftp://b"',
    'cluster.id: use 1-32 lowercase letters, digits, "-" or "_", starting with a letter or digit',
    'cluster.max_staleness_ms: must be at least 1000',
    'cluster.lease_ttl_ms: must be at least 1000',
    'cluster.redis: expected a redis:// or rediss:// URL, got "http://x"',
    `cluster.secret_file: ${join(dir, 'short.secret')} holds fewer than 32 bytes (make one with: openssl rand -hex 32 > ${join(dir, 'short.secret')})`,
  ].sort())
  t.end()
})

t.test('listen.peer and cluster go together; PROXY protocol needs trust_proxy', (t) => {
  const dir = writeFiles(t.testdir(), { 'cluster.secret': SECRET })
  const noPeer = member(dir)
  noPeer['listen'] = { public: '127.0.0.11:8080', agents: '127.0.0.11:7443' }
  t.same(failure(() => parse(noPeer, dir)).lines, ['listen.peer: cluster needs listen.peer (where other relays forward requests), e.g. 10.0.0.1:7444'])
  t.same(failure(() => parse({ listen: { peer: '127.0.0.1:7444' }, agents }, dir)).lines, ['listen.peer: listen.peer is only used with cluster; set cluster or remove listen.peer'])
  t.same(failure(() => parse({ listen: { public_proxy_protocol: true }, agents }, dir)).lines, ['listen.public_proxy_protocol: PROXY headers are read only from trust_proxy addresses; list your load balancer in trust_proxy'])
  t.same(failure(() => parse({ ...member(dir), listen: { public: '127.0.0.11:7444', agents: '127.0.0.11:7443', peer: '127.0.0.11:7444' } }, dir)).lines, ['listen.peer: 127.0.0.11:7444 overlaps listen.public (127.0.0.11:7444)'])
  t.same(failure(() => parse({ ...member(dir), cluster: { ...(member(dir)['cluster'] as object), secret_file: 'missing' } }, dir)).lines, [`cluster.secret_file: file not found: ${join(dir, 'missing')}`])
  t.end()
})

t.test('peer_tls: PEM files checked and resolved; advertise.peer must be https with it, http without', (t) => {
  const dir = writeFiles(t.testdir(), { 'cluster.secret': SECRET, 'peer.crt': PEM, 'peer.key': PEM, 'ca.crt': PEM, 'notpem.txt': 'hello\n' })
  const https = { agents: 'ws://127.0.0.11:7443', peer: 'https://127.0.0.11:7444' }
  const { config } = parse(member(dir, { advertise: https, peer_tls: { cert: 'peer.crt', key: 'peer.key', ca: 'ca.crt' } }), dir)
  t.same(config.cluster?.peer_tls, { cert: join(dir, 'peer.crt'), key: join(dir, 'peer.key'), ca: join(dir, 'ca.crt') })
  t.equal(config.cluster?.advertise.peer, 'https://127.0.0.11:7444')

  t.same(failure(() => parse(member(dir, { peer_tls: { cert: 'peer.crt', key: 'peer.key', ca: 'ca.crt' } }), dir)).lines,
    ['cluster.advertise.peer: cluster.peer_tls makes listen.peer https; advertise it as https://, got "http://127.0.0.11:7444"'])
  t.same(failure(() => parse(member(dir, { advertise: https }), dir)).lines,
    ['cluster.advertise.peer: an https:// peer URL needs cluster.peer_tls (cert, key, ca) for mTLS between relays'])
  const bad = failure(() => parse(member(dir, { advertise: https, peer_tls: { cert: 'missing.crt', key: 'notpem.txt', extra: 1 } }), dir))
  t.equal(bad.code, 'PL_ERR_CONFIG_INVALID')
  t.same(bad.lines.sort(), [
    'cluster.peer_tls.ca: required',
    `cluster.peer_tls.cert: file not found: ${join(dir, 'missing.crt')}`,
    'cluster.peer_tls.extra: unknown key "extra"',
    `cluster.peer_tls.key: no PEM block in ${join(dir, 'notpem.txt')}`,
  ].sort())
  t.end()
})
