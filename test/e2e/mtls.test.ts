// Agents with client certificates (issue 3): the relay's own CA made by `ca init`, bundles from
// `cert issue`, `require_cert: true`, every rejection case answered before the WebSocket upgrade
// with a line on the agent saying which case it was, and revocation without a restart.
import { execFile } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { foreignCert, initPki, issueCert, issueDatedCert, relayTlsKeys, revokeCert, serverCertBundle, type Bundle } from './harness/pki.js'
import { runCli, startAgent, startRelay, type AgentProcess } from './harness/processes.js'
import type { Scope } from './harness/scope.js'
import { visit } from './harness/visitor.js'
import { upgradeOverTls as upgradeWith, type UpgradeAnswer } from './harness/tls-upgrade.js'
import { pollUntil } from './harness/wait.js'

const DAY_MS = 24 * 3600 * 1000

// One CA, one relay (agents listener on wss:// with client certificates) for the whole file.
const pki = await initPki(t)
const laptop = await issueCert(pki, 'laptop')
const desk = await issueCert(pki, 'desk')
const origin = await startHttpOrigin(t)
const relay = await startRelay(t, {
  agents: {
    laptop: { require_cert: true },
    desk: { require_cert: true },
    // Same listener, certificate not demanded: the token alone is enough.
    open: {},
  },
  extra: relayTlsKeys(pki),
})
// server.crt from `ca init --hostname localhost` names localhost: agents dial that name.
const relayUrl = `wss://localhost:${relay.agentsPort}`

interface AgentRun {
  name?: string
  cert?: string
  token?: string
  /** Also trust pki/ca.crt for the relay (`ca:`); implied without `cert`, whose bundle carries the CA. */
  trustCa?: boolean
  tunnel: string
  expectExit?: boolean
}

/** An agent on the TLS listener; without `cert` it trusts the relay through `ca:` (pki/ca.crt). */
function tlsAgent(t: Scope, run: AgentRun): Promise<AgentProcess> {
  return startAgent(t, relay, {
    name: run.name ?? 'laptop',
    ...(run.token !== undefined ? { token: run.token } : {}),
    tunnels: [{ http: run.tunnel, to: origin.url }],
    extra: {
      relay: relayUrl,
      ...(run.cert !== undefined ? { cert: run.cert } : {}),
      ...(run.cert === undefined || run.trustCa === true ? { ca: pki.caCert } : {}),
    },
    ...(run.expectExit ? { expectExit: true } : {}),
  })
}

/** The human `CODE: message` lines of an agent's stderr (pino JSON lines start with "{"). */
function errorLines(agent: AgentProcess): string[] {
  return agent.stderr().split('\n').filter(l => l.startsWith('PL_ERR_'))
}

/** The serial of a bundle's first certificate as the relay writes it (lowercase hex, no leading zeros). */
function serialOf(bundle: string): string {
  return new X509Certificate(readFileSync(bundle)).serialNumber.toLowerCase().replace(/^0+(?=.)/, '')
}

function openssl(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise(resolve => {
    execFile('openssl', args, { timeout: 10_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null
      resolve({ code, output: `${String(stdout)}${String(stderr)}` })
    })
  })
}

/**
 * A raw WebSocket upgrade on the TLS agents listener with this token and bundle. Probes come from
 * 127.0.0.3 so they do not count towards the relay's per-address limit on failed agent
 * authentications (20 a minute) that the agents on 127.0.0.1 also draw on.
 */
function upgradeOverTls(token: string, bundle: string | null, localAddress = '127.0.0.3'): Promise<UpgradeAnswer> {
  return upgradeWith({ port: relay.agentsPort, caCert: pki.caCert, token, bundle, localAddress })
}

t.test('ca init -> cert issue -> the agent connects with certificate and token', async t => {
  t.match(readFileSync(laptop.file, 'utf8'), /^-----BEGIN CERTIFICATE-----[\s\S]+PRIVATE KEY-----[\s\S]+-----BEGIN CERTIFICATE-----/, 'bundle: cert, key, CA')
  t.equal(statSync(laptop.file).mode & 0o777, 0o600, 'bundle is mode 0600')
  t.equal(statSync(pki.dir).mode & 0o777, 0o700, 'PKI dir is mode 0700')
  t.equal(statSync(`${pki.dir}/ca.key`).mode & 0o777, 0o600, 'ca.key is mode 0600')
  const agent = await tlsAgent(t, { cert: laptop.file, tunnel: 'secure' })
  t.same(agent.urls, [`http://secure.localhost:${relay.publicPort}`])
  const res = await visit(relay.publicPort, { host: 'secure.localhost', path: '/through-mtls' })
  t.equal(res.status, 200)
  t.equal(JSON.parse(res.text).url, '/through-mtls')
  t.same(errorLines(agent), [], 'no error line on the agent')
  const list = await runCli('relay', ['cert', 'list', '--pki', pki.dir])
  t.equal(list.code, 0, list.stderr)
  t.match(list.stdout, new RegExp(`^laptop\\s+${laptop.serial}\\s+\\d{4}-\\d{2}-\\d{2}\\s+no$`, 'm'))
  t.match(list.stdout, new RegExp(`^desk\\s+${desk.serial}\\s+\\d{4}-\\d{2}-\\d{2}\\s+no$`, 'm'))
})

t.test('require_cert is per agent: an agent without it connects over wss:// on the token alone', async t => {
  const agent = await tlsAgent(t, { name: 'open', tunnel: 'tokenonly' })
  t.same(agent.urls, [`http://tokenonly.localhost:${relay.publicPort}`])
  t.equal((await visit(relay.publicPort, { host: 'tokenonly.localhost' })).status, 200)
})

// Every rejection: the relay answers the upgrade with 403 and a one-line reason (never 101), the
// agent prints `PL_ERR_AUTH_CERT_REJECTED: client certificate rejected: <reason>` once and exits 1.
t.test('each rejection case is refused before the upgrade and named on the agent', async t => {
  const now = Date.now()
  const expired = await issueDatedCert(pki, 'laptop', { notBefore: new Date(now - 30 * DAY_MS), notAfter: new Date(now - DAY_MS) }, 'laptop-expired.pem')
  const notYet = await issueDatedCert(pki, 'laptop', { notBefore: new Date(now + DAY_MS), notAfter: new Date(now + 30 * DAY_MS) }, 'laptop-future.pem')
  const wrongCa = await foreignCert(pki, 'laptop', 'laptop-wrong-ca.pem')
  const revoked = await issueCert(pki, 'laptop', 'laptop-revoked.pem')
  const visitorLaptop = await issueCert(pki, 'laptop', 'laptop-visitor.pem', { visitor: true })
  await revokeCert(pki, revoked.serial)
  // The relay polls revoked.json once a second: wait until a new handshake with it is refused.
  const seen = await pollUntil(() => upgradeOverTls(relay.tokens['laptop'] ?? '', revoked.file), a => a.status === 403, { timeoutMs: 5000, intervalMs: 100 })
  t.ok(seen.ok, `revoked serial refused by the running relay after ${seen.ms} ms (no restart)`)
  t.comment(`revocation seen by new handshakes within ${seen.ms} ms`)

  const cases: Array<{ name: string; cert: string | undefined; reason: string; body: string; detail?: string }> = [
    { name: 'no certificate', cert: undefined, reason: 'no client certificate', body: 'PL_ERR_AUTH_CERT_REQUIRED: no client certificate' },
    { name: 'wrong CA (same CA subject)', cert: wrongCa.file, reason: "certificate not issued by this relay's CA", body: "PL_ERR_AUTH_CERT_REJECTED: certificate not issued by this relay's CA" },
    { name: 'expired', cert: expired.file, reason: 'certificate expired', body: 'PL_ERR_AUTH_CERT_REJECTED: certificate expired', detail: 'CERT_HAS_EXPIRED' },
    { name: 'not yet valid', cert: notYet.file, reason: 'certificate not yet valid', body: 'PL_ERR_AUTH_CERT_REJECTED: certificate not yet valid', detail: 'CERT_NOT_YET_VALID' },
    { name: 'a visitor certificate with the agent\'s name', cert: visitorLaptop.file, reason: 'a visitor certificate cannot authenticate an agent', body: 'PL_ERR_AUTH_CERT_REJECTED: a visitor certificate cannot authenticate an agent' },
    { name: 'revoked', cert: revoked.file, reason: 'certificate revoked', body: 'PL_ERR_AUTH_CERT_REJECTED: certificate revoked' },
    { name: "other agent's certificate", cert: desk.file, reason: 'certificate belongs to agent desk', body: 'PL_ERR_AUTH_CERT_REJECTED: certificate belongs to agent desk' },
    { name: 'server.crt as a client certificate', cert: serverCertBundle(pki), reason: 'certificate not valid for client authentication', body: 'PL_ERR_AUTH_CERT_REJECTED: certificate not valid for client authentication', detail: 'INVALID_PURPOSE' },
  ]
  const token = relay.tokens['laptop'] ?? ''
  for (const c of cases) {
    await t.test(c.name, async t => {
      const answer = await upgradeOverTls(token, c.cert ?? null)
      t.equal(answer.status, 403, 'upgrade answered 403, not 101')
      t.equal(answer.body, `${c.body}\n`, 'one-line plain-text reason')

      // A bundle from another CA does not make the agent trust this relay: add its CA (`ca:`).
      const agent = await tlsAgent(t, { cert: c.cert, trustCa: true, tunnel: 'never', expectExit: true })
      t.equal(await agent.exited, 1, 'agent exits 1 (no retry loop)')
      t.same(errorLines(agent), [`PL_ERR_AUTH_CERT_REJECTED: client certificate rejected: ${c.reason}`])
      t.notMatch(agent.stderr(), /\n\s+at /, 'no stack trace')
      t.same(agent.urls, [], 'nothing published')
      const logged = relay.logs().filter(l => l['msg'] === 'agent certificate rejected' && l['reason'] === c.reason)
      t.ok(logged.length >= 2, `relay logged the reason (${logged.length} lines)`)
      t.equal(logged.at(-1)?.['agent'], 'laptop')
      // docs/tls.md: "The relay log carries the same reason, the certificate serial and OpenSSL's code".
      if (c.cert !== undefined) t.equal(logged.at(-1)?.['serial'], serialOf(c.cert), 'relay log names the serial')
      if (c.detail !== undefined) t.equal(logged.at(-1)?.['detail'], c.detail, "relay log has OpenSSL's code")
    })
  }
  t.equal((await visit(relay.publicPort, { host: 'never.localhost' })).status, 404, 'no rejected agent ever published')
})

t.test("the right certificate with a wrong token is 401, and the token's agent decides the CN", async t => {
  const answer = await upgradeOverTls('x'.repeat(43), laptop.file)
  t.equal(answer.status, 401)
  t.equal(answer.body, 'unauthorized\n', 'generic body: says nothing about the certificate')
  const agent = await tlsAgent(t, { cert: laptop.file, token: 'x'.repeat(43), tunnel: 'never', expectExit: true })
  t.equal(await agent.exited, 1)
  t.same(errorLines(agent), ['PL_ERR_AUTH_BAD_TOKEN: relay rejected the agent token (HTTP 401)'])
  // desk's token with laptop's (valid) certificate: the certificate belongs to someone else.
  const crossed = await upgradeOverTls(relay.tokens['desk'] ?? '', laptop.file)
  t.same(crossed, { status: 403, body: 'PL_ERR_AUTH_CERT_REJECTED: certificate belongs to agent laptop\n' })
})

// SECURITY A5 (b): revocation closes a live session; (a) and (c) are in packages/server/test/agents/tls.test.ts.
t.test('revoking a connected agent: tunnel answers 503 within 5 s, the agent is not let back in', async t => {
  const victim = await issueCert(pki, 'desk', 'desk-victim.pem')
  const agent = await tlsAgent(t, { name: 'desk', cert: victim.file, tunnel: 'doomed' })
  t.equal((await visit(relay.publicPort, { host: 'doomed.localhost' })).status, 200, 'serving before the revocation')
  const before = relay.logs().length

  const started = Date.now()
  const revokeRes = await revokeCert(pki, victim.serial)
  t.match(revokeRes.stdout, new RegExp(`^revoked ${victim.serial}$`, 'm'))
  const offline = await pollUntil(() => visit(relay.publicPort, { host: 'doomed.localhost' }), r => r.status === 503, { timeoutMs: 8000, intervalMs: 100 })
  const ms = Date.now() - started
  t.equal(offline.value.status, 503, 'tunnel offline')
  t.ok(ms < 5000, `503 ${ms} ms after \`cert revoke\` started (limit 5000)`)
  t.comment(`revoke -> 503 in ${ms} ms`)
  t.match(offline.value.text, /tunnel offline/i)

  // It tries again with the same certificate, is refused, and stops.
  t.equal(await agent.handle.waitForExit(15_000), 1, 'agent exits 1')
  t.same(errorLines(agent), ['PL_ERR_AUTH_CERT_REJECTED: client certificate rejected: certificate revoked'])
  const closed = relay.logs().slice(before).find(l => l['msg'] === 'certificate revoked; closing agent session')
  t.equal(closed?.['serial'], victim.serial, 'relay says which session it cut off')
  t.equal((await visit(relay.publicPort, { host: 'doomed.localhost' })).status, 503)

  // ca.crl, for other tools, says the same (docs/tls.md's openssl command).
  const crl = `${pki.dir}/ca.crl`
  const revokedVerdict = await openssl(['verify', '-crl_check', '-CRLfile', crl, '-CAfile', pki.caCert, victim.file])
  t.equal(revokedVerdict.code, 2, 'openssl verify fails for the revoked certificate')
  t.match(revokedVerdict.output, /certificate revoked/)
  const goodVerdict = await openssl(['verify', '-crl_check', '-CRLfile', crl, '-CAfile', pki.caCert, desk.file])
  t.equal(goodVerdict.code, 0, goodVerdict.output)
  t.match(goodVerdict.output, /: OK$/m)

  // Revoking one certificate leaves the agent's other certificate working.
  const other = await tlsAgent(t, { name: 'desk', cert: desk.file, tunnel: 'doomed' })
  t.same(other.urls, [`http://doomed.localhost:${relay.publicPort}`])
  t.equal((await visit(relay.publicPort, { host: 'doomed.localhost' })).status, 200)
})

t.test('failed agent authentications are limited per address (429) without locking out another address', async t => {
  const statuses: number[] = []
  for (let i = 0; i < 21; i++) statuses.push((await upgradeOverTls(`wrong-token-${i}`.padEnd(43, 'x'), null, '127.0.0.4')).status)
  t.same(statuses, [...Array(20).fill(401), 429], '20 failures a minute, then 429')
  const limited = await upgradeOverTls(relay.tokens['laptop'] ?? '', laptop.file, '127.0.0.4')
  t.equal(limited.status, 429, 'even the right token and certificate from that address')
  t.equal(limited.body, 'too many failed attempts\n')
  t.equal((await upgradeOverTls(relay.tokens['laptop'] ?? '', laptop.file, '127.0.0.5')).status, 101, 'another address still gets in')
})
