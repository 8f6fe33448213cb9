import t from 'tap'
import { parse } from 'yaml'
import { addAgentEntry, allowAgentEntry, removeAgentEntry } from '../../src/enrol/relay-yaml.js'

const CONFIG = `# My relay. Comments like this one must survive every edit.
domain: tunnel.example.com   # the public name

listen:
  public: 0.0.0.0:80
# Agents, one per machine.
agents: {}
`
const HASH = 'a'.repeat(64)

t.test('agent add keeps comments and order, turns agents: {} into a block map', async (t) => {
  const text = addAgentEntry(CONFIG, 'relay.yaml', 'laptop', { token_sha256: HASH, require_cert: true, hosts: ['*.laptop.tunnel.example.com'], tcp_ports: [2222, '30000-30100'], outbound: [] }, 'added 2026-01-01')
  // The yaml library keeps every comment; the spaces before an inline one become one.
  t.match(text, /^# My relay\. Comments like this one must survive every edit\.\ndomain: tunnel\.example\.com # the public name\n\nlisten:\n/)
  t.match(text, /# Agents, one per machine\.\nagents:\n {2}# added 2026-01-01\n {2}laptop:\n {4}token_sha256: "a{64}"\n {4}require_cert: true\n {4}hosts: \[ "\*\.laptop\.tunnel\.example\.com" \]\n {4}tcp_ports: \[ 2222, 30000-30100 \]\n$/)
  t.same(parse(text).agents, { laptop: { token_sha256: HASH, require_cert: true, hosts: ['*.laptop.tunnel.example.com'], tcp_ports: [2222, '30000-30100'] } })

  const two = addAgentEntry(text, 'relay.yaml', 'desktop', { token_sha256: HASH, require_cert: false, hosts: ['desk.example.org'], tcp_ports: [], outbound: ['smtp.example.com:587'] })
  t.same(Object.keys(parse(two).agents), ['laptop', 'desktop'], 'appended, order kept')
  t.throws(() => addAgentEntry(two, 'relay.yaml', 'laptop', { token_sha256: HASH, require_cert: false, hosts: [], tcp_ports: [], outbound: [] }), { code: 'PL_ERR_CONFIG_AGENT_EXISTS' })
})

t.test('agent add creates agents: when the file has none', async (t) => {
  const text = addAgentEntry('domain: localhost\n', 'r.yaml', 'a', { token_sha256: HASH, require_cert: false, hosts: ['*.a.localhost'], tcp_ports: [], outbound: [] })
  t.same(parse(text), { domain: 'localhost', agents: { a: { token_sha256: HASH, hosts: ['*.a.localhost'] } } })
  t.same(parse(addAgentEntry('agents:\n', 'r.yaml', 'a', { token_sha256: HASH, require_cert: false, hosts: [], tcp_ports: [], outbound: [] })).agents, { a: { token_sha256: HASH, hosts: [] } })
})

t.test('agent remove deletes only that entry', async (t) => {
  const text = `agents:\n  # laptop\n  laptop:\n    token_sha256: "${HASH}"\n  # the desktop\n  desktop:\n    token_sha256: "${HASH}"\n`
  const out = removeAgentEntry(text, 'r.yaml', 'laptop')
  t.same(Object.keys(parse(out).agents), ['desktop'])
  t.match(out, /# the desktop\n {2}desktop:/)
  t.throws(() => removeAgentEntry(out, 'r.yaml', 'laptop'), { code: 'PL_ERR_CONFIG_AGENT_UNKNOWN' })
  t.throws(() => removeAgentEntry('domain: x\n', 'r.yaml', 'laptop'), { code: 'PL_ERR_CONFIG_AGENT_UNKNOWN' })
})

t.test('agent allow appends what is new, in the list style already used', async (t) => {
  const text = `agents:\n  laptop:\n    token_sha256: "${HASH}"\n    hosts:\n      - a.example.org  # first\n`
  const { text: out, added } = allowAgentEntry(text, 'r.yaml', 'laptop', { hosts: ['a.example.org', 'b.example.org'], tcp_ports: [2222], outbound: [] })
  t.same(added, { hosts: ['b.example.org'], tcp_ports: [2222] })
  t.match(out, /- a\.example\.org # first\n {6}- b\.example\.org\n {4}tcp_ports: \[ 2222 \]\n/)
  t.same(allowAgentEntry(out, 'r.yaml', 'laptop', { hosts: ['b.example.org'] }).added, {}, 'nothing new, nothing added')
  t.throws(() => allowAgentEntry(out, 'r.yaml', 'nobody', { hosts: ['x'] }), { code: 'PL_ERR_CONFIG_AGENT_UNKNOWN' })
})

t.test('broken YAML is refused before any edit', async (t) => {
  t.throws(() => addAgentEntry('agents: [\n', 'r.yaml', 'a', { token_sha256: HASH, require_cert: false, hosts: [], tcp_ports: [], outbound: [] }), { code: 'PL_ERR_CONFIG_YAML' })
  t.throws(() => addAgentEntry('- a\n', 'r.yaml', 'a', { token_sha256: HASH, require_cert: false, hosts: [], tcp_ports: [], outbound: [] }), { code: 'PL_ERR_CONFIG_INVALID' })
})
