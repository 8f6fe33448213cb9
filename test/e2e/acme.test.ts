// ACME against Debian's pebble on loopback (issue 12): HTTP-01 for a published name (then renewal
// forced by a short acme.renew_before_expiry_s), TLS-ALPN-01 with only the HTTPS listener reachable,
// DNS-01 for a wildcard through acme.dns_hook; each ends in a TLS client that verifies the served
// certificate against pebble's root. Names nobody published and random SNIs never get an order.
import { X509Certificate } from 'node:crypto'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import tls from 'node:tls'
import t from 'tap'
import { pebbleMissingReason, startPebble } from './harness/pebble.js'
import { startHttpOrigin } from './harness/origins.js'
import { freePort } from './harness/ports.js'
import { RelayProcess, startAgent } from './harness/processes.js'
import type { Scope } from './harness/scope.js'

const skip = pebbleMissingReason()
const ISSUE_TIMEOUT_MS = 30_000

/** A visitor's handshake, verified against `ca` only; resolves with the peer certificate or the error. */
function handshake(port: number, servername: string, ca: string): Promise<{ ok: true; serial: string; body: string } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ca, ALPNProtocols: ['http/1.1'] }, () => {
      const serial = new X509Certificate(socket.getPeerX509Certificate()!.raw).serialNumber.toLowerCase()
      let body = ''
      socket.setEncoding('utf8')
      socket.on('data', (c: string) => { body += c })
      socket.on('end', () => resolve({ ok: true, serial, body }))
      socket.write(`GET / HTTP/1.1\r\nhost: ${servername}\r\nconnection: close\r\n\r\n`)
    })
    socket.on('error', (err) => resolve({ ok: false, error: err.message }))
  })
}

async function acmeRelay(t: Scope, opts: { hosts: string[] }) {
  const httpPort = await freePort()
  const tlsPort = await freePort()
  const relay = new RelayProcess(t, { domain: 'acme.test', agents: { laptop: { hosts: opts.hosts } } })
  relay.config.listen.public = `127.0.0.1:${httpPort}`
  relay.config.listen.public_tls = { address: `127.0.0.1:${tlsPort}`, certs: [] }
  relay.config['state'] = 'state'
  return { relay, httpPort, tlsPort }
}

function ordersFor(relay: RelayProcess): string[] {
  return relay.logs().filter(l => l['msg'] === 'acme: ordering a certificate').map(l => String(l['host']))
}

t.test('HTTP-01 for a published name; renewal; unpublished names and random SNIs get no order', { skip: skip ?? false }, async t => {
  const { relay, httpPort, tlsPort } = await acmeRelay(t, { hosts: ['*.acme.test'] })
  const pebble = await startPebble(t, { httpPort, tlsPort, validitySeconds: 60 })
  relay.config['acme'] = { directory: pebble.directory, directory_ca: pebble.directoryCa, email: 'ops@acme.test', challenge: 'http-01', renew_before_expiry_s: 54 }
  await relay.start()
  const origin = await startHttpOrigin(t, { '/': (_req, res) => res.end('hello over acme') })
  const published = Date.now()
  const agent = await startAgent(t, relay, { tunnels: [{ http: 'site', to: origin.url }] })
  t.match(agent.urls[0], /^http:\/\/site\.acme\.test:/, 'served over http until the certificate is ready')
  const issued = await relay.waitForLog(l => l['msg'] === 'acme: certificate issued' && l['host'] === 'site.acme.test', ISSUE_TIMEOUT_MS, 'certificate issued')
  t.comment(`HTTP-01 issuance: ${Date.now() - published} ms from publish (relay: ${String(issued['ms'])} ms)`)
  const root = await pebble.root()
  const first = await handshake(tlsPort, 'site.acme.test', root)
  t.ok(first.ok, 'the visitor verifies the certificate against pebble\'s root')
  if (first.ok) {
    t.match(first.body, /hello over acme/)
    t.equal(first.serial, String(issued['serial']))
  }
  await agent.waitForLine(/Forwarding https:\/\/site\.acme\.test:/, 10_000, 'https Forwarding line')

  for (const name of ['other.acme.test', 'random-9f3e.acme.test', 'example.com']) {
    const r = await handshake(tlsPort, name, root)
    t.notOk(r.ok, `no certificate for ${name}`)
  }
  // Renewal: due 6 s after issuance (60 s lifetime, renew 54 s before the end, up to 3 s jitter).
  const renewed = await relay.waitForLog(l => l['msg'] === 'acme: certificate issued' && l['host'] === 'site.acme.test' && l['serial'] !== issued['serial'], ISSUE_TIMEOUT_MS, 'renewed certificate')
  const second = await handshake(tlsPort, 'site.acme.test', root)
  t.ok(second.ok && second.serial === String(renewed['serial']), 'the renewed certificate is served without a restart')
  t.same([...new Set(ordersFor(relay))], ['site.acme.test'], 'orders only for the published name')

  const metrics = await fetch(`${relay.adminUrl}/metrics`, { headers: { authorization: `Bearer ${relay.adminToken}` } }).then(r => r.text())
  t.match(metrics, /porchlight_acme_orders_total\{result="valid"\} [2-9]/)
  t.match(metrics, /porchlight_acme_certificates_valid 1/)
  t.match(metrics, /porchlight_acme_certificate_expiry_seconds\{name="site.acme.test"\} \d+/)
})

t.test('TLS-ALPN-01 with only the HTTPS listener reachable (auto, loopback HTTP)', { skip: skip ?? false }, async t => {
  const { relay, tlsPort } = await acmeRelay(t, { hosts: ['*.acme.test'] })
  // pebble's httpPort points at a closed port: HTTP-01 cannot succeed here.
  const pebble = await startPebble(t, { httpPort: await freePort(), tlsPort })
  relay.config['acme'] = { directory: pebble.directory, directory_ca: pebble.directoryCa, email: 'ops@acme.test', names: ['alpn.acme.test'] }
  const started = Date.now()
  await relay.start()
  const issued = await relay.waitForLog(l => l['msg'] === 'acme: certificate issued' && l['host'] === 'alpn.acme.test', ISSUE_TIMEOUT_MS, 'certificate issued')
  t.equal(issued['challenge'], 'tls-alpn-01')
  t.comment(`TLS-ALPN-01 issuance: ${Date.now() - started} ms from start (relay: ${String(issued['ms'])} ms)`)
  const root = await pebble.root()
  const r = await handshake(tlsPort, 'alpn.acme.test', root)
  t.ok(r.ok, 'verified against pebble\'s root')

  // Account key and certificate in state/, 0600 under 0700; a restart serves the stored one.
  const acmeDir = join(relay.dir, 'state', 'acme')
  const [sub] = readdirSync(acmeDir)
  const base = join(acmeDir, sub ?? '')
  t.equal(statSync(base).mode & 0o777, 0o700)
  for (const f of ['account.key', 'certs/alpn.acme.test.crt', 'certs/alpn.acme.test.key']) t.equal(statSync(join(base, f)).mode & 0o777, 0o600, f)
  await relay.restart()
  await relay.waitForLog(l => l['msg'] === 'acme: using the stored certificate' && l['host'] === 'alpn.acme.test', 10_000, 'stored certificate reused')
  const again = await handshake(tlsPort, 'alpn.acme.test', root)
  t.ok(again.ok && r.ok && again.serial === r.serial, 'the same certificate after a restart')
  t.equal(ordersFor(relay).length, 1, 'no second order')
})

t.test('DNS-01 wildcard through acme.dns_hook; names under it need no order', { skip: skip ?? false }, async t => {
  const { relay, tlsPort, httpPort } = await acmeRelay(t, { hosts: ['*.wild.acme.test'] })
  const pebble = await startPebble(t, { httpPort, tlsPort })
  relay.config['acme'] = { directory: pebble.directory, directory_ca: pebble.directoryCa, email: 'ops@acme.test', names: ['*.wild.acme.test'], dns_hook: pebble.dnsHook, challenge: 'http-01' }
  const started = Date.now()
  await relay.start()
  const issued = await relay.waitForLog(l => l['msg'] === 'acme: certificate issued' && l['host'] === '*.wild.acme.test', ISSUE_TIMEOUT_MS, 'wildcard issued')
  t.equal(issued['challenge'], 'dns-01')
  t.comment(`DNS-01 wildcard issuance: ${Date.now() - started} ms from start (relay: ${String(issued['ms'])} ms)`)
  const origin = await startHttpOrigin(t, { '/': (_req, res) => res.end('wild') })
  const agent = await startAgent(t, relay, { tunnels: [{ http: 'blog.wild.acme.test', to: origin.url }] })
  t.match(agent.urls[0], /^https:\/\/blog\.wild\.acme\.test:/, 'https at once: the wildcard covers it')
  const r = await handshake(tlsPort, 'blog.wild.acme.test', await pebble.root())
  t.ok(r.ok && r.body.includes('wild'), 'verified against pebble\'s root')
  t.same(ordersFor(relay), ['*.wild.acme.test'], 'one order, for the wildcard')
})

t.test('a failed validation is counted and the name waits before its next order', { skip: skip ?? false }, async t => {
  const { relay, tlsPort } = await acmeRelay(t, { hosts: ['*.acme.test'] })
  // pebble checks HTTP-01 on a port nobody listens on.
  const pebble = await startPebble(t, { httpPort: await freePort(), tlsPort })
  relay.config['acme'] = { directory: pebble.directory, directory_ca: pebble.directoryCa, email: 'ops@acme.test', challenge: 'http-01', names: ['fail.acme.test'] }
  await relay.start()
  const failed = await relay.waitForLog(l => l['msg'] === 'acme: order failed' && l['host'] === 'fail.acme.test', ISSUE_TIMEOUT_MS, 'order failed')
  t.equal(failed['failures'], 1)
  t.equal(failed['retry_in_s'], 60, 'first retry after a minute')
  const metrics = await fetch(`${relay.adminUrl}/metrics`, { headers: { authorization: `Bearer ${relay.adminToken}` } }).then(r => r.text())
  t.match(metrics, /porchlight_acme_orders_total\{result="failed"\} 1/)
  t.match(metrics, /porchlight_acme_orders_waiting 1/)
  t.notOk((await handshake(tlsPort, 'fail.acme.test', await pebble.root())).ok, 'no certificate, no fallback')
})
