// The tunnel table (issue 10): ownership refusals carry a code, a quick share's name is drawn
// inside the agent's policy, a stale owner that does not answer a ping loses the name, and a
// reload withdraws hosts, closes sessions that no longer qualify and frees a removed agent's names.
import t from 'tap'
import net from 'node:net'
import { PassThrough } from 'node:stream'
import { parseRelayConfig, type RelayConfig } from '@porchlight/shared/config'
import { createLogger } from '@porchlight/shared/log'
import type { PublishResult, RelayMessage, TunnelSpec } from '@porchlight/shared/protocol'
import { TcpPorts } from '../../src/agents/tcp-ports.js'
import { TunnelTable, type TunnelSession } from '../../src/agents/tunnel-table.js'

const HASH_A = 'a'.repeat(64)
const HASH_B = 'b'.repeat(64)
const HASH_C = 'c'.repeat(64)
const log = createLogger({ name: 'test', level: 'silent' })

function relayConfig(agents: Record<string, unknown>, domain = 'tunnel.example.com'): RelayConfig {
  return parseRelayConfig({ domain, agents }, 'relay.yaml', '/nonexistent', {}).config
}

class FakeSession implements TunnelSession {
  static next = 0
  readonly id = `s${FakeSession.next++}`
  readonly log = log
  isClosed = false
  leaving = false
  tunnels: TunnelSpec[] = []
  results: PublishResult[] = []
  readonly sent: RelayMessage[] = []
  closedWith: { code: string; message: string } | null = null
  constructor(readonly table: TunnelTable<FakeSession>, readonly agent: string, readonly instance: string, readonly tokenSha256 = HASH_A, readonly certSerial: string | null = null, readonly live = true) {}
  openStream(): PassThrough { return new PassThrough() }
  send(m: RelayMessage): void { this.sent.push(m) }
  answersPing(): Promise<boolean> { return Promise.resolve(this.live) }
  close(_err?: Error, notice?: { code: string; message: string }): void {
    if (this.isClosed) return
    this.isClosed = true
    this.closedWith = notice ?? null
    this.table.unpublish(this)
  }
}

function buildTable(initial: RelayConfig): { table: TunnelTable<FakeSession>; setConfig: (c: RelayConfig) => void; session: (agent: string, instance: string, opts?: { token?: string; cert?: string | null; live?: boolean }) => FakeSession } {
  let config = initial
  // eslint-style forward reference: the table exists by the time a port is contested.
  const tcpPorts: TcpPorts = new TcpPorts({ config: () => config, log, reservedPorts: () => new Set(), stateDir: null, staleOwner: (owner) => table.replaceIfStale(owner as FakeSession) })
  const table: TunnelTable<FakeSession> = new TunnelTable<FakeSession>({ config: () => config, log, tcpPorts, reservedHosts: () => new Set(['localhost', config.domain]), publicUrl: (h) => `https://${h}/` })
  return {
    table,
    setConfig: (c) => { config = c },
    session: (agent, instance, opts = {}) => {
      const s = new FakeSession(table, agent, instance, opts.token ?? HASH_A, opts.cert ?? null, opts.live ?? true)
      table.attach(s)
      return s
    },
  }
}

const http = (id: string, host = id): TunnelSpec => ({ id, kind: 'http', host })

t.test('a second process claiming a live owner\'s host gets PL_ERR_POLICY_HOST_TAKEN; another agent gets PL_ERR_POLICY_HOST_IN_USE', async (t) => {
  const { table, session } = buildTable(relayConfig({ laptop: { token_sha256: HASH_A, hosts: ['*.tunnel.example.com'] }, desktop: { token_sha256: HASH_B, hosts: ['*.tunnel.example.com'] } }))
  const service = session('laptop', 'svc')
  t.same(await table.publish(service, [http('blog')]), [{ id: 'blog', ok: true, url: 'https://blog.tunnel.example.com/' }])
  const quick = session('laptop', 'quick')
  const [taken] = await table.publish(quick, [http('blog')])
  t.same(taken, { id: 'blog', ok: false, code: 'PL_ERR_POLICY_HOST_TAKEN', message: 'host blog.tunnel.example.com is served by another running process of agent laptop; stop that process or pick another name' })
  const [inUse] = await table.publish(session('desktop', 'x', { token: HASH_B }), [http('blog')])
  t.equal(inUse?.ok === false && inUse.code, 'PL_ERR_POLICY_HOST_IN_USE')
  t.equal(service.isClosed, false, 'a live owner is never closed by a claim')
  t.equal(table.registry.route('blog.tunnel.example.com')?.session, service)
})

t.test('a stale owner (no answer to a ping) is closed and the claim succeeds', async (t) => {
  const { table, session } = buildTable(relayConfig({ laptop: { token_sha256: HASH_A, hosts: ['*.tunnel.example.com'] } }))
  const rebooted = session('laptop', 'before-reboot', { live: false })
  await table.publish(rebooted, [http('blog')])
  const fresh = session('laptop', 'after-reboot')
  const [result] = await table.publish(fresh, [http('blog')])
  t.equal(result?.ok, true)
  t.equal(rebooted.isClosed, true)
  t.equal(rebooted.closedWith?.code, 'PL_ERR_LINK_REPLACED')
  t.equal(table.registry.route('blog.tunnel.example.com')?.session, fresh)
})

t.test('quick shares ("*") get a free random name inside the policy, and keep it across a reconnect', async (t) => {
  const { table, session } = buildTable(relayConfig({ laptop: { token_sha256: HASH_A, hosts: ['*.laptop.tunnel.example.com', 'blog.example.org'] }, nowild: { token_sha256: HASH_B, hosts: ['blog.example.org'] } }))
  const names = new Set<string>()
  for (let i = 0; i < 20; i++) {
    const s = session('laptop', `p${i}`)
    const [r] = await table.publish(s, [http('quick', '*')])
    t.ok(r?.ok, `quick share ${i} accepted`)
    const host = r?.ok ? new URL(r.url).hostname : ''
    t.match(host, /^[a-z]+-[a-z]+-[0-9a-f]{4}\.laptop\.tunnel\.example\.com$/, host)
    names.add(host)
  }
  t.equal(names.size, 20, 'every process got a different name')

  const first = session('laptop', 'keep')
  const [r1] = await table.publish(first, [http('quick', '*')])
  first.close()
  const again = session('laptop', 'keep')
  const [r2] = await table.publish(again, [http('quick', '*')])
  t.equal(r2?.ok && r2.url, r1?.ok && r1.url, 'the same process reconnecting gets the same name')

  const [denied] = await table.publish(session('nowild', 'x', { token: HASH_B }), [http('quick', '*')])
  t.same(denied, { id: 'quick', ok: false, code: 'PL_ERR_POLICY_NO_FREE_NAME', message: 'no random name is free for agent nowild: its hosts policy needs a "*." pattern (or pass --name)' })
})

t.test('reload: withdrawn hosts stop routing, rotated tokens and new require_cert close sessions, removed agents free their names', async (t) => {
  const agents = {
    laptop: { token_sha256: HASH_A, hosts: ['a.example.com', 'b.example.com'] },
    other: { token_sha256: HASH_B, hosts: ['*.example.com'] },
    certless: { token_sha256: HASH_C, hosts: ['c.example.com'] },
  }
  const { table, session, setConfig } = buildTable(relayConfig(agents))
  const laptop = session('laptop', 'one')
  await table.publish(laptop, [http('a', 'a.example.com'), http('b', 'b.example.com')])
  const offlineSib = session('laptop', 'two')
  await table.publish(offlineSib, [http('b2', 'b2.example.com')]) // denied: not in policy
  const certless = session('certless', 'x', { token: HASH_C })
  await table.publish(certless, [http('c', 'c.example.com')])
  const other = session('other', 'y', { token: HASH_B })

  const next = relayConfig({ laptop: { token_sha256: HASH_A, hosts: ['a.example.com'] }, other: { token_sha256: HASH_C, hosts: ['*.example.com'] } })
  setConfig(next)
  await table.reload(next)
  t.equal(table.registry.route('b.example.com'), undefined, 'the withdrawn host no longer routes (404)')
  t.equal(table.registry.route('a.example.com')?.session, laptop, 'the kept host serves from the same session')
  t.equal(laptop.isClosed, false)
  t.same(laptop.results.map((r) => [r.id, r.ok]), [['a', true], ['b', false]])
  t.match(laptop.sent, [{ type: 'notice', level: 'warn', code: 'PL_ERR_POLICY_HOST_DENIED', message: /tunnel b withdrawn by a relay config reload/ }])
  t.equal(other.isClosed, true, 'rotated token: session closed')
  t.same(other.closedWith, { code: 'PL_ERR_AUTH_BAD_TOKEN', message: 'agent token changed in relay config' })
  t.equal(certless.isClosed, true, 'removed agent: session closed')
  t.equal(table.registry.route('c.example.com'), undefined, 'and its name released')

  // The loader wants tls and pki for require_cert; the table only reads the policy.
  const withCert: RelayConfig = { ...next, agents: { laptop: { ...next.agents['laptop']!, require_cert: true } } }
  setConfig(withCert)
  await table.reload(withCert)
  t.same(laptop.closedWith, { code: 'PL_ERR_AUTH_CERT_REQUIRED', message: 'relay config now requires a client certificate' })
  t.equal(offlineSib.isClosed, true)
})

t.test('a relay TCP port has one owner process: a live one keeps it (PL_ERR_POLICY_PORT_TAKEN), a stale one is replaced', async (t) => {
  const port = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (probe.address() as net.AddressInfo).port
      probe.close(() => resolve(p))
    })
  })
  const base = relayConfig({ laptop: { token_sha256: HASH_A, hosts: ['*.tunnel.example.com'], tcp_ports: [port] } })
  const config: RelayConfig = { ...base, listen: { ...base.listen, public: { host: '127.0.0.1', port: 0 } } }
  const { table, session } = buildTable(config)
  const tcp: TunnelSpec = { id: 'ssh', kind: 'tcp', remote_port: port }
  const owner = session('laptop', 'svc')
  t.same(await table.publish(owner, [tcp]), [{ id: 'ssh', ok: true, url: `tcp://tunnel.example.com:${port}` }])
  t.teardown(() => { owner.close(); for (const s of table.registry.allSessions()) s.close() })
  const [taken] = await table.publish(session('laptop', 'quick'), [tcp])
  t.same(taken, { id: 'ssh', ok: false, code: 'PL_ERR_POLICY_PORT_TAKEN', message: `port ${port} is served by another running process of agent laptop` })

  const stale = session('laptop', 'hung', { live: false })
  owner.close()
  t.equal((await table.publish(stale, [tcp]))[0]?.ok, true, 'the owner gone, another process takes the port')
  const fresh = session('laptop', 'rebooted')
  t.same(await table.publish(fresh, [tcp]), [{ id: 'ssh', ok: true, url: `tcp://tunnel.example.com:${port}` }], 'a stale holder is replaced')
  t.equal(stale.closedWith?.code, 'PL_ERR_LINK_REPLACED')
})

t.test('a quick share that stops (GoAway) releases the name the relay picked; configured names stay reserved', async (t) => {
  const { table, session } = buildTable(relayConfig({ laptop: { token_sha256: HASH_A, hosts: ['*.tunnel.example.com'] } }))
  const quick = session('laptop', 'quick')
  const [r] = await table.publish(quick, [http('q', '*'), http('blog')])
  const picked = r?.ok ? new URL(r.url).hostname : ''
  quick.leaving = true
  quick.close()
  t.equal(table.registry.route(picked), undefined, 'the picked name is free again (404, not a 503 forever)')
  t.equal(table.registry.route('blog.tunnel.example.com')?.session, null, 'the configured name stays reserved, offline')

  const blip = session('laptop', 'blip')
  const [b] = await table.publish(blip, [http('q', '*')])
  const blipHost = b?.ok ? new URL(b.url).hostname : ''
  blip.close() // lost, not leaving: the name waits for the process to come back
  t.equal(table.registry.route(blipHost)?.session, null)
  const back = session('laptop', 'blip')
  const [again] = await table.publish(back, [http('q', blipHost)])
  t.equal(again?.ok && new URL(again.url).hostname, blipHost, 'the same process gets it back by name')
  back.leaving = true
  back.close()
  t.equal(table.registry.route(blipHost), undefined, 'and still releases it when it stops')
})

t.test('onHostPublished hears accepted hostnames only (ACME orders for them, issue 12)', async (t) => {
  const config = relayConfig({ laptop: { token_sha256: HASH_A, hosts: ['*.laptop.tunnel.example.com'] } })
  const heard: string[] = []
  const tcpPorts = new TcpPorts({ config: () => config, log, reservedPorts: () => new Set(), stateDir: null, staleOwner: () => Promise.resolve(true) })
  const table = new TunnelTable<FakeSession>({ config: () => config, log, tcpPorts, reservedHosts: () => new Set(['localhost', config.domain]), publicUrl: (h) => `http://${h}/`, onHostPublished: (h) => heard.push(h) })
  const s = new FakeSession(table, 'laptop', 'i1')
  table.attach(s)
  const results = await table.publish(s, [http('blog', 'blog.laptop.tunnel.example.com'), http('evil', 'evil.example.com'), http('x', 'x.laptop.tunnel.example.com')])
  t.same(results.map((r) => r.ok), [true, false, true])
  t.same(heard, ['blog.laptop.tunnel.example.com', 'x.laptop.tunnel.example.com'])
})
