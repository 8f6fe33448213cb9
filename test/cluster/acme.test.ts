import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import tls from 'node:tls'
import t from 'tap'
import { pebbleMissingReason, startPebble, type Pebble } from '../e2e/harness/pebble.js'
import { startAgent } from '../e2e/harness/processes.js'
import type { Scope } from '../e2e/harness/scope.js'
import { pollUntil } from '../e2e/harness/wait.js'
import { startCluster, startEchoOrigin, startRedis, waitForLinks, type ClusterRelay } from './harness.js'

// Issue 15, ACME in a cluster: three relays share the ACME state in Redis. The name is published
// through an agent linked to every relay, so all of them want a certificate at once; pebble's
// validation reaches r2 only (every name resolves to 127.0.0.12), while the agent reaches r1 first,
// so r1 usually wins the order lock and r2 answers HTTP-01 from the key authorisation in Redis.
// Exactly one order; every relay serves the same certificate; r3, started later, takes it from
// Redis without ordering; nothing in Redis is a PEM in clear.
const NAME = 'site.acme.test'
const ISSUE_TIMEOUT_MS = 30_000
const skip = pebbleMissingReason()

/** A visitor's handshake to one relay, verified against pebble's root only: the serial, or null when it fails. */
function servedSerial(relay: ClusterRelay, root: string, name = NAME): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: relay.ip, port: relay.ports.public_tls, servername: name, ca: root, ALPNProtocols: ['http/1.1'], timeout: 3000 }, () => {
      const serial = new X509Certificate(socket.getPeerX509Certificate()!.raw).serialNumber.toLowerCase()
      socket.destroy()
      resolve(serial)
    })
    socket.on('timeout', () => socket.destroy())
    socket.on('error', () => resolve(null))
    socket.on('close', () => resolve(null))
  })
}

const ordersOf = (relay: ClusterRelay, name = NAME): number => relay.proc.logs().filter((l) => l['msg'] === 'acme: ordering a certificate' && l['host'] === name).length
const logged = (relay: ClusterRelay, msg: string, name: string): boolean => relay.proc.logs().some((l) => l['msg'] === msg && l['host'] === name)

/**
 * Relays on 127.0.0.11-13 sharing their ports, with `acme:` against a pebble whose validation
 * connects to r2's address only (every name resolves to it), and `state:` for the local cache.
 */
async function acmeCluster(t: Scope, opts: { count: number; startCount: number; challenge: 'http-01' | 'tls-alpn-01'; validitySeconds?: number; renewBeforeS?: number }) {
  const redis = await startRedis(t)
  let pebble: Pebble | null = null
  const relays = await startCluster(t, {
    redis,
    agents: ['laptop', 'desk'],
    domain: 'acme.test',
    // Each name belongs to one agent by config: no lease, so a name is published while Redis is down.
    hosts: { laptop: [NAME, 'alpn.acme.test', 'renew.acme.test'], desk: ['later.acme.test'] },
    publicTls: true,
    count: opts.count,
    startCount: opts.startCount,
    extra: { state: 'state' },
    beforeStart: async (rs) => {
      pebble = await startPebble(t, { httpPort: rs[0]!.ports.public, tlsPort: rs[0]!.ports.public_tls, ipv4: rs[1]!.ip, ...(opts.validitySeconds ? { validitySeconds: opts.validitySeconds } : {}) })
      for (const r of rs) {
        r.proc.config['acme'] = { directory: pebble.directory, directory_ca: pebble.directoryCa, email: 'ops@acme.test', challenge: opts.challenge, ...(opts.renewBeforeS ? { renew_before_expiry_s: opts.renewBeforeS } : {}) }
      }
    },
  })
  const root = await pebble!.root()
  return { redis, relays, root }
}

/** An agent publishing `name`, configured with r1's URL (it links to the others from r1's member list). */
async function publish(t: Scope, relays: ClusterRelay[], agent: string, name: string) {
  const origin = await startEchoOrigin(t, agent)
  return startAgent(t, relays[0]!.proc, { name: agent, tunnels: [{ http: name, to: origin.url }], extra: { relay: relays[0]!.agentsUrl }, env: { PORCHLIGHT_BACKOFF_MAX_MS: '500' } })
}

async function validOrders(relay: ClusterRelay): Promise<number> {
  const text = await fetch(`${relay.adminUrl}/metrics`, { headers: { authorization: `Bearer ${relay.proc.adminToken}` } }).then((r) => r.text())
  return Number(/porchlight_acme_orders_total\{result="valid"\} (\d+)/.exec(text)?.[1] ?? 0)
}

/** Every key and value in Redis as redis-cli prints them (strings, streams, sets), one text. */
function redisDump(port: number): { keys: string[]; text: string } {
  const cli = (...args: string[]): string => execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), '--raw', ...args], { encoding: 'utf8', timeout: 5000 })
  const keys = cli('--scan').split('\n').filter((k) => k !== '')
  let text = ''
  for (const key of keys) {
    const type = cli('TYPE', key).trim()
    const value = type === 'string' ? cli('GET', key) : type === 'stream' ? cli('XRANGE', key, '-', '+') : type === 'set' ? cli('SMEMBERS', key) : type === 'zset' ? cli('ZRANGE', key, '0', '-1') : type === 'hash' ? cli('HGETALL', key) : ''
    text += `${key} ${type}\n${value}\n`
  }
  return { keys, text }
}

t.test('one ACME order per name across the cluster; every relay serves it; a late relay takes it from Redis', { skip: skip ?? false }, async (t) => {
  const { redis, relays, root } = await acmeCluster(t, { count: 3, startCount: 2, challenge: 'http-01' })
  const [r1, r2, r3] = relays as [ClusterRelay, ClusterRelay, ClusterRelay]
  const published = Date.now()
  await publish(t, relays, 'laptop', NAME)
  t.ok((await waitForLinks([r1, r2], ['laptop'], 10_000)).ok, 'the agent holds a link to r1 and r2')

  const both = await pollUntil(() => Promise.all([r1, r2].map((r) => servedSerial(r, root))), (s) => s[0] !== null && s[0] === s[1], { timeoutMs: ISSUE_TIMEOUT_MS, intervalMs: 250 })
  t.ok(both.ok, `r1 and r2 serve one certificate that verifies against pebble's root (${both.value.join(', ')})`)
  t.comment(`issued and served by r1 and r2: ${Date.now() - published} ms from publish`)
  const serial = both.value[0]

  const orderer = [r1, r2].filter((r) => ordersOf(r) > 0)
  t.equal(orderer.length, 1, 'one relay ordered')
  t.equal(ordersOf(r1) + ordersOf(r2), 1, 'one order for the name across the cluster')
  const issuedBy = orderer[0]
  const issued = issuedBy?.proc.logs().find((l) => l['msg'] === 'acme: certificate issued' && l['host'] === NAME)
  t.equal(issued?.['serial'], serial, 'the served serial is the issued one')
  t.comment(`ordered by ${issuedBy?.id ?? 'nobody'}; pebble validated against r2`)
  const other = issuedBy === r1 ? r2 : r1
  t.ok(other.proc.logs().some((l) => l['msg'] === 'acme: using the certificate from the cluster' && l['host'] === NAME && l['serial'] === serial), `${other.id} took the certificate from Redis`)
  // The CA's request reached r2, which had no order open: it answered from Redis.
  if (issuedBy === r1) t.ok(logged(r2, 'acme: http-01 challenge answered from the cluster', NAME), 'r2 answered r1\'s HTTP-01 challenge from Redis')

  // A relay that joins later: the agent links to it, it wants the name and finds it in Redis.
  await r3.proc.start()
  t.ok((await waitForLinks(relays, ['laptop'], 15_000)).ok, 'the agent links to r3 too')
  const late = await pollUntil(() => servedSerial(r3, root), (s) => s !== null, { timeoutMs: 15_000, intervalMs: 250 })
  t.equal(late.value, serial, 'r3 serves the same certificate')
  t.ok(logged(r3, 'acme: using the certificate from the cluster', NAME), 'r3 read it from Redis')
  t.equal(ordersOf(r3), 0, 'r3 placed no order')
  const valid = await Promise.all(relays.map(validOrders))
  t.same(valid.reduce((a, b) => a + b, 0), 1, `porchlight_acme_orders_total{result="valid"} across the relays: ${valid.join(' + ')}`)

  // Redis holds the account, the certificate and its key, all sealed: no PEM in clear.
  const dump = redisDump(redis.port)
  t.ok(dump.keys.some((k) => /^porchlight:acme:[0-9a-f]{16}:cert:site\.acme\.test$/.test(k)), 'the certificate is stored in Redis')
  t.ok(dump.keys.some((k) => /^porchlight:acme:[0-9a-f]{16}:account$/.test(k)), 'the account key is stored in Redis')
  t.notMatch(dump.text, /PRIVATE KEY/, 'no private key in clear')
  t.notMatch(dump.text, /-----BEGIN/, 'no PEM of any kind in clear')
  t.notMatch(dump.text, /MHcCAQEE|MIGHAgEAMBMG/, 'no base64 of a DER EC key either')
})

t.test('TLS-ALPN-01 answered by any relay; with Redis down relays keep serving and a new name waits, then is ordered once', { skip: skip ?? false }, async (t) => {
  const { redis, relays, root } = await acmeCluster(t, { count: 2, startCount: 2, challenge: 'tls-alpn-01' })
  const [r1, r2] = relays as [ClusterRelay, ClusterRelay]
  const first = 'alpn.acme.test'
  await publish(t, relays, 'laptop', first)
  const served = await pollUntil(() => Promise.all(relays.map((r) => servedSerial(r, root, first))), (s) => s[0] !== null && s[0] === s[1], { timeoutMs: ISSUE_TIMEOUT_MS, intervalMs: 250 })
  t.ok(served.ok, `both relays serve one certificate for ${first} (${served.value.join(', ')})`)
  t.equal(ordersOf(r1, first) + ordersOf(r2, first), 1, 'one order')
  t.equal([r1, r2].find((r) => ordersOf(r, first) > 0)?.proc.logs().find((l) => l['msg'] === 'acme: certificate issued' && l['host'] === first)?.['challenge'], 'tls-alpn-01', 'validated over TLS-ALPN-01')
  if (ordersOf(r1, first) === 1) t.ok(logged(r2, 'acme: tls-alpn-01 challenge answered from the cluster', first), 'r2 answered r1\'s TLS-ALPN-01 challenge from Redis')

  // Redis goes away: what the relays hold keeps serving; a name published now is not ordered.
  await redis.handle.kill('SIGKILL')
  const second = 'later.acme.test'
  await publish(t, relays, 'desk', second)
  t.ok((await waitForLinks(relays, ['desk'], 10_000)).ok, 'the new agent links to both relays (member list kept)')
  await Promise.all(relays.map((r) => r.proc.waitForLog((l) => l['msg'] === 'acme: order waits for redis (never ordered without the cluster lock)' && l['host'] === second, 15_000, `${r.id} waiting for redis`)))
  t.same(await Promise.all(relays.map((r) => servedSerial(r, root, first))), served.value, `${first} still served by both with Redis down`)
  t.equal(ordersOf(r1, second) + ordersOf(r2, second), 0, 'no order without Redis')

  // Redis is back (empty: no persistence in the test): one order for the new name, served by both.
  await redis.restart()
  const later = await pollUntil(() => Promise.all(relays.map((r) => servedSerial(r, root, second))), (s) => s[0] !== null && s[0] === s[1], { timeoutMs: ISSUE_TIMEOUT_MS, intervalMs: 250 })
  t.ok(later.ok, `both relays serve one certificate for ${second} once Redis is back (${later.value.join(', ')})`)
  t.equal(ordersOf(r1, second) + ordersOf(r2, second), 1, 'one order for it across the cluster')
})

t.test('renewal in a cluster: one order per renewal, every relay serves the renewed certificate', { skip: skip ?? false }, async (t) => {
  // 60 s certificates renewed 54 s before their end: due 3-6 s after issuance on each relay (jitter).
  const { relays, root } = await acmeCluster(t, { count: 2, startCount: 2, challenge: 'http-01', validitySeconds: 60, renewBeforeS: 54 })
  const name = 'renew.acme.test'
  await publish(t, relays, 'laptop', name)
  const issuedSerials = (): string[] => relays.flatMap((r) => r.proc.logs().filter((l) => l['msg'] === 'acme: certificate issued' && l['host'] === name).map((l) => String(l['serial'])))
  const first = await pollUntil(() => Promise.all(relays.map((r) => servedSerial(r, root, name))), (s) => s[0] !== null && s[0] === s[1], { timeoutMs: ISSUE_TIMEOUT_MS, intervalMs: 250 })
  t.ok(first.ok, `both serve the first certificate (${first.value.join(', ')})`)
  const renewed = await pollUntil(() => Promise.all(relays.map((r) => servedSerial(r, root, name))), (s) => s[0] !== null && s[0] === s[1] && s[0] !== first.value[0] && issuedSerials().includes(s[0] ?? ''), { timeoutMs: ISSUE_TIMEOUT_MS, intervalMs: 250 })
  t.ok(renewed.ok, `both serve the renewed certificate without a restart (${renewed.value.join(', ')})`)

  // Renewals go on every few seconds; each is a single order: orders never overlap, and each
  // starts only once the newest certificate is due (3 s into its 60 s life at the earliest). A
  // member ordering in parallel, or ordering after the lock without the re-check, breaks one of them.
  type Ev = { at: number; relay: string; kind: 'order' | 'issued' | 'failed'; notBefore: number }
  const kinds: Record<string, Ev['kind']> = { 'acme: ordering a certificate': 'order', 'acme: certificate issued': 'issued', 'acme: order failed': 'failed' }
  const events: Ev[] = relays.flatMap((r) => r.proc.logs().filter((l) => l['host'] === name && kinds[String(l['msg'])] !== undefined).map((l): Ev => ({
    at: Number(l['time']), relay: r.id, kind: kinds[String(l['msg'])]!, notBefore: l['not_after'] ? Date.parse(String(l['not_after'])) - 60_000 : 0,
  }))).sort((a, b) => a.at - b.at)
  let inFlight = false
  let newest: number | null = null
  const problems: string[] = []
  for (const e of events) {
    if (e.kind !== 'order') {
      inFlight = false
      if (e.kind === 'issued') newest = e.notBefore
      continue
    }
    if (inFlight) problems.push(`${e.relay} ordered at ${e.at} while another order was open`)
    // X.509 times have whole seconds: a second of slack.
    if (newest !== null && e.at < newest + 3_000 - 1_000) problems.push(`${e.relay} ordered at ${e.at}, ${e.at - newest} ms into a fresh certificate`)
    inFlight = true
  }
  t.comment(`orders and issues: ${events.map((e) => `${e.relay} ${e.kind} +${e.at - events[0]!.at} ms${e.kind === 'issued' ? ` (not_before +${e.notBefore - events[0]!.at} ms)` : ''}`).join('; ')}`)
  t.ok(events.filter((e) => e.kind === 'order').length >= 2, 'the first order and at least one renewal')
  t.same(problems, [], 'one order per renewal')
})
