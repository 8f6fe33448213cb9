import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import tls from 'node:tls'
import t from 'tap'
import { pebbleMissingReason, startPebble, type Pebble } from '../e2e/harness/pebble.js'
import { startAgent } from '../e2e/harness/processes.js'
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
function servedSerial(relay: ClusterRelay, root: string): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: relay.ip, port: relay.ports.public_tls, servername: NAME, ca: root, ALPNProtocols: ['http/1.1'], timeout: 3000 }, () => {
      const serial = new X509Certificate(socket.getPeerX509Certificate()!.raw).serialNumber.toLowerCase()
      socket.destroy()
      resolve(serial)
    })
    socket.on('timeout', () => socket.destroy())
    socket.on('error', () => resolve(null))
    socket.on('close', () => resolve(null))
  })
}

const ordersOf = (relay: ClusterRelay): number => relay.proc.logs().filter((l) => l['msg'] === 'acme: ordering a certificate' && l['host'] === NAME).length

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
  const redis = await startRedis(t)
  let pebble: Pebble | null = null
  const relays = await startCluster(t, {
    redis,
    agents: ['laptop'],
    domain: 'acme.test',
    hosts: ['*.acme.test'],
    publicTls: true,
    startCount: 2,
    extra: { state: 'state' },
    beforeStart: async (rs) => {
      // The relays share their ports on 127.0.0.11-13; pebble's validation goes to r2's address.
      pebble = await startPebble(t, { httpPort: rs[0]!.ports.public, tlsPort: rs[0]!.ports.public_tls, ipv4: rs[1]!.ip })
      for (const r of rs) r.proc.config['acme'] = { directory: pebble.directory, directory_ca: pebble.directoryCa, email: 'ops@acme.test', challenge: 'http-01' }
    },
  })
  const [r1, r2, r3] = relays as [ClusterRelay, ClusterRelay, ClusterRelay]
  const origin = await startEchoOrigin(t, 'laptop')
  const published = Date.now()
  await startAgent(t, r1.proc, { name: 'laptop', tunnels: [{ http: NAME, to: origin.url }], extra: { relay: r1.agentsUrl }, env: { PORCHLIGHT_BACKOFF_MAX_MS: '500' } })
  t.ok((await waitForLinks([r1, r2], ['laptop'], 10_000)).ok, 'the agent holds a link to r1 and r2')

  const root = await pebble!.root()
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
  if (issuedBy === r1) {
    // The CA's request reached r2, which had no order open: it answered from Redis.
    t.ok(r2.proc.logs().some((l) => l['msg'] === 'acme: http-01 challenge answered from the cluster' && l['host'] === NAME), 'r2 answered r1\'s HTTP-01 challenge from Redis')
  }

  // A relay that joins later: the agent links to it, it wants the name and finds it in Redis.
  await r3.proc.start()
  t.ok((await waitForLinks(relays, ['laptop'], 15_000)).ok, 'the agent links to r3 too')
  const late = await pollUntil(() => servedSerial(r3, root), (s) => s !== null, { timeoutMs: 15_000, intervalMs: 250 })
  t.equal(late.value, serial, 'r3 serves the same certificate')
  t.ok(r3.proc.logs().some((l) => l['msg'] === 'acme: using the certificate from the cluster' && l['host'] === NAME), 'r3 read it from Redis')
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
