import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import tls from 'node:tls'
import t from 'tap'
import { initCa, issueClientCert, parseBundle, revokeCert } from '@porchlight/shared/pki'
import { createTestCa, createTestCert } from '../../../shared/src/pki/testing.js'
import { buildAgentTlsContextOptions, checkClientCert, watchRevocations, type CertCheck } from '../../src/agents/tls.js'

// One real PKI for the whole file: key generation is the slow part.
const root = t.testdir()
const dir = join(root, 'pki')
await initCa({ dir, hostname: 'relay.test' })
const caPem = await readFile(join(dir, 'ca.crt'), 'utf8')
const caKeyPem = await readFile(join(dir, 'ca.key'), 'utf8')
const DAY_MS = 86_400_000
const now = Date.now()

const good = parseBundle((await issueClientCert({ dir, name: 'laptop' })).pemBundle)
const expired = parseBundle((await issueClientCert({ dir, name: 'laptop', notBefore: new Date(now - 2 * DAY_MS), notAfter: new Date(now - DAY_MS) })).pemBundle)
const notYet = parseBundle((await issueClientCert({ dir, name: 'laptop', notBefore: new Date(now + DAY_MS), notAfter: new Date(now + 2 * DAY_MS) })).pemBundle)
const toRevoke = await issueClientCert({ dir, name: 'laptop' })
const otherAgent = parseBundle((await issueClientCert({ dir, name: 'desktop' })).pemBundle)
// A look-alike CA with the very same subject, and a leaf for "laptop" from it (SECURITY A4).
const caCn = /CN=([^\n]+)/.exec(new (await import('node:crypto')).X509Certificate(caPem).subject)?.[1] ?? ''
const wrongCa = await createTestCa({ commonName: caCn })
const wrongCaLeaf = await createTestCert(wrongCa, { commonName: 'laptop' })
const selfSigned = await createTestCert(null, { commonName: 'laptop' })
// A6: a CA-signed certificate with only serverAuth, and a chain forged with a leaf as the issuer.
const serverOnly = await createTestCert({ certPem: caPem, keyPem: caKeyPem }, { commonName: 'laptop', profile: 'server' })
const forged = await createTestCert({ certPem: otherAgent.cert, keyPem: otherAgent.key }, { commonName: 'laptop' })

let revoked = new Set<string>()
const serverOptions = buildAgentTlsContextOptions({ cert: join(dir, 'server.crt'), key: join(dir, 'server.key'), caFile: join(dir, 'ca.crt') })
const server = tls.createServer(serverOptions, (socket) => {
  socket.on('error', () => {})
  socket.end(JSON.stringify(checkClientCert(socket, 'laptop', revoked)))
})
server.listen(0, '127.0.0.1')
await once(server, 'listening')
t.teardown(() => server.close())
const port = (server.address() as AddressInfo).port

interface Probe {
  check: CertCheck
  reused: boolean
  sessions: Buffer[]
}

/** Connects like the agent does (trusting the relay CA, verifying the relay) and returns the relay's verdict. */
async function probe(client: { cert?: string; key?: string; session?: Buffer; maxVersion?: tls.SecureVersion }, toPort = port): Promise<Probe> {
  const socket = tls.connect({
    host: '127.0.0.1',
    port: toPort,
    ca: [caPem],
    ...(client.cert === undefined ? {} : { cert: client.cert, key: client.key }),
    ...(client.session === undefined ? {} : { session: client.session }),
    ...(client.maxVersion === undefined ? {} : { maxVersion: client.maxVersion }),
  })
  const sessions: Buffer[] = []
  socket.on('session', (s: Buffer) => sessions.push(s))
  let body = ''
  socket.setEncoding('utf8')
  socket.on('data', (d: string) => { body += d })
  await once(socket, 'end')
  const reused = socket.isSessionReused()
  const last = socket.getSession()
  if (sessions.length === 0 && last) sessions.push(last)
  socket.destroy()
  return { check: JSON.parse(body) as CertCheck, reused, sessions }
}

t.test('the relay certificate made by ca init is trusted by an agent holding the bundle CA', async (t) => {
  const result = await probe({ cert: good.cert, key: good.key })
  t.equal(result.check.ok, true)
})

t.test('checkClientCert verdicts from real handshakes (SECURITY A3, A4, A6)', async (t) => {
  const cases: Array<[string, { cert?: string; key?: string }, Partial<CertCheck>]> = [
    ['good certificate', { cert: good.cert, key: good.key }, { ok: true, name: 'laptop' }],
    ['no certificate', {}, { ok: false, code: 'PL_ERR_AUTH_CERT_REQUIRED', reason: 'no client certificate' }],
    ['wrong CA, identical subject', { cert: wrongCaLeaf.certPem, key: wrongCaLeaf.keyPem }, { ok: false, code: 'PL_ERR_AUTH_CERT_REJECTED', reason: "certificate not issued by this relay's CA" }],
    ['self-signed, same CN', { cert: selfSigned.certPem, key: selfSigned.keyPem }, { ok: false, code: 'PL_ERR_AUTH_CERT_REJECTED', reason: "certificate not issued by this relay's CA", detail: 'DEPTH_ZERO_SELF_SIGNED_CERT' }],
    ['expired', { cert: expired.cert, key: expired.key }, { ok: false, code: 'PL_ERR_AUTH_CERT_REJECTED', reason: 'certificate expired', detail: 'CERT_HAS_EXPIRED' }],
    ['not yet valid', { cert: notYet.cert, key: notYet.key }, { ok: false, code: 'PL_ERR_AUTH_CERT_REJECTED', reason: 'certificate not yet valid', detail: 'CERT_NOT_YET_VALID' }],
    ["another agent's certificate", { cert: otherAgent.cert, key: otherAgent.key }, { ok: false, code: 'PL_ERR_AUTH_CERT_REJECTED', reason: 'certificate belongs to agent desktop' }],
    ['serverAuth-only certificate from the CA', { cert: serverOnly.certPem, key: serverOnly.keyPem }, { ok: false, code: 'PL_ERR_AUTH_CERT_REJECTED', reason: 'certificate not valid for client authentication', detail: 'INVALID_PURPOSE' }],
    ['chain forged with a leaf as issuer', { cert: forged.certPem + otherAgent.cert, key: forged.keyPem }, { ok: false, code: 'PL_ERR_AUTH_CERT_REJECTED', reason: "certificate not issued by this relay's CA" }],
  ]
  for (const [name, client, expected] of cases) {
    const { check } = await probe(client)
    t.match(check, expected, name)
    if (!expected.ok) t.equal(check.ok, false, `${name} is refused`)
  }
})

t.test('revocation: a revoked serial is refused on the next connection; the good one still works (SECURITY A5a)', async (t) => {
  const bundle = parseBundle(toRevoke.pemBundle)
  t.match((await probe({ cert: bundle.cert, key: bundle.key })).check, { ok: true, serial: toRevoke.serial })
  const seen: Array<Set<string>> = []
  const stop = watchRevocations(dir, (serials) => { seen.push(serials); revoked = serials }, 50)
  t.teardown(stop)
  const started = performance.now()
  await revokeCert({ dir, nameOrSerial: toRevoke.serial })
  while (!revoked.has(toRevoke.serial) && performance.now() - started < 5000) await new Promise((r) => setTimeout(r, 10))
  const tookMs = performance.now() - started
  t.comment(`revocation seen by the watcher after ${tookMs.toFixed(0)} ms (poll 50 ms)`)
  t.ok(tookMs < 2000, `watcher saw the revocation in ${tookMs.toFixed(0)} ms (requirement: 5 s)`)
  t.match((await probe({ cert: bundle.cert, key: bundle.key })).check, { ok: false, code: 'PL_ERR_AUTH_CERT_REJECTED', reason: 'certificate revoked', serial: toRevoke.serial })
  t.match((await probe({ cert: good.cert, key: good.key })).check, { ok: true })
})

t.test('session resumption is refused, TLS 1.2 and 1.3 (SECURITY A5c)', async (t) => {
  for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
    const first = await probe({ cert: good.cert, key: good.key, maxVersion })
    t.ok(first.sessions.length > 0, `${maxVersion}: the client kept a session to offer`)
    for (const session of first.sessions) {
      const again = await probe({ cert: good.cert, key: good.key, maxVersion, session })
      t.equal(again.reused, false, `${maxVersion}: session not resumed`)
      t.equal(again.check.ok, true, `${maxVersion}: full handshake, certificate checked again`)
    }
  }
})

t.test('control: the same server without our options does resume, so the test above can fail', async (t) => {
  const { secureOptions: _dropped, ...resumable } = serverOptions
  const plain = tls.createServer(resumable, (socket) => socket.end(JSON.stringify({ ok: true })))
  plain.listen(0, '127.0.0.1')
  await once(plain, 'listening')
  t.teardown(() => plain.close())
  const plainPort = (plain.address() as AddressInfo).port
  const first = await probe({ cert: good.cert, key: good.key, maxVersion: 'TLSv1.2' }, plainPort)
  const again = await probe({ cert: good.cert, key: good.key, maxVersion: 'TLSv1.2', session: first.sessions[0]! }, plainPort)
  t.equal(again.reused, true)
})

t.test('the CRL is accepted by OpenSSL and makes it refuse revoked certificates itself', async (t) => {
  const withCrl = buildAgentTlsContextOptions({ cert: join(dir, 'server.crt'), key: join(dir, 'server.key'), caFile: join(dir, 'ca.crt'), crlFile: join(dir, 'ca.crl') })
  const crlServer = tls.createServer(withCrl, (socket) => socket.end(JSON.stringify(checkClientCert(socket, 'laptop', new Set()))))
  crlServer.listen(0, '127.0.0.1')
  await once(crlServer, 'listening')
  t.teardown(() => crlServer.close())
  const crlPort = (crlServer.address() as AddressInfo).port
  const bundle = parseBundle(toRevoke.pemBundle)
  t.match((await probe({ cert: bundle.cert, key: bundle.key }, crlPort)).check, { ok: false, reason: 'certificate revoked', detail: 'CERT_REVOKED' })
  t.match((await probe({ cert: good.cert, key: good.key }, crlPort)).check, { ok: true, name: 'laptop' })
})

t.test('watchRevocations: reports the initial set, keeps the last good set on a corrupt file, stops', async (t) => {
  const wdir = t.testdir()
  const file = join(wdir, 'revoked.json')
  await writeFile(file, JSON.stringify({ version: 1, revoked: [{ serial: 'AB', name: 'x', revokedAt: '2026-01-01T00:00:00Z' }] }))
  const seen: string[][] = []
  const errors: unknown[] = []
  const stop = watchRevocations(wdir, (s) => seen.push([...s]), 20, (err) => errors.push(err))
  const waitFor = async (cond: () => boolean) => {
    const started = Date.now()
    while (!cond() && Date.now() - started < 3000) await new Promise((r) => setTimeout(r, 10))
  }
  await waitFor(() => seen.length === 1)
  t.same(seen, [['ab']])
  await writeFile(file, '{ broken')
  await waitFor(() => errors.length > 0)
  t.match(errors[0], { code: 'PL_ERR_TLS_FILE' })
  t.equal(seen.length, 1, 'no change reported for a corrupt file')
  await writeFile(file, JSON.stringify({ version: 1, revoked: [{ serial: 'ab', name: 'x', revokedAt: 'x' }, { serial: '0c', name: 'y', revokedAt: 'x' }] }))
  await waitFor(() => seen.length === 2)
  t.same(seen[1], ['ab', 'c'])
  stop()
  await writeFile(file, JSON.stringify({ version: 1, revoked: [] }))
  await new Promise((r) => setTimeout(r, 100))
  t.equal(seen.length, 2, 'nothing after stop()')
})

t.test('buildAgentTlsContextOptions: the documented options, and clear errors naming the bad file (SECURITY H5)', async (t) => {
  t.match(serverOptions, { requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2', ca: [caPem] })
  const noPki = buildAgentTlsContextOptions({ cert: join(dir, 'server.crt'), key: join(dir, 'server.key'), caFile: null })
  t.equal(noPki.requestCert, false, 'without a PKI no client certificate is requested')
  t.equal(noPki.ca, undefined)
  const files = { cert: join(dir, 'server.crt'), key: join(dir, 'server.key'), caFile: join(dir, 'ca.crt') }
  const empty = join(root, 'empty.pem')
  await writeFile(empty, 'no pem here\n')
  const otherKey = join(root, 'other.key')
  await writeFile(otherKey, good.key)
  t.throws(() => buildAgentTlsContextOptions({ ...files, cert: join(root, 'missing.crt') }), { code: 'PL_ERR_TLS_FILE', message: /missing\.crt/ })
  t.throws(() => buildAgentTlsContextOptions({ ...files, caFile: empty }), { code: 'PL_ERR_TLS_FILE', message: /empty\.pem: no CERTIFICATE/ })
  t.throws(() => buildAgentTlsContextOptions({ ...files, key: otherKey }), { code: 'PL_ERR_TLS_FILE', message: /other\.key/ })
})
