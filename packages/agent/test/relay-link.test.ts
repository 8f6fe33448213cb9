import { writeFile } from 'node:fs/promises'
import https from 'node:https'
import net, { type AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import t, { type Test } from 'tap'
import { WebSocketServer } from 'ws'
import { createTestCa, createTestCert, type TestCa } from '../../shared/src/pki/testing.js'
import { agentEndpoint, classifyDialError, dialRelay, httpFailure } from '../src/relay-link.js'
import { memoryLogger } from './helpers/log.js'
import { closedPort } from './helpers/origin.js'

const TOKEN = 'tls-token-0123456789-0123456789-0123456789'

interface TlsRelay {
  port: number
  upgrades: number
  peerCommonNames: string[]
}

/** A wss relay stand-in: TLS with the given server cert, client certs requested, any token accepted. */
async function startTlsRelay(t: Test, server: { certPem: string; keyPem: string }, ca: TestCa): Promise<TlsRelay> {
  const state: TlsRelay = { port: 0, upgrades: 0, peerCommonNames: [] }
  const httpsServer = https.createServer({ cert: server.certPem, key: server.keyPem, ca: [ca.certPem], requestCert: true, rejectUnauthorized: false }) // lint-allow: relay-decides
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false })
  httpsServer.on('upgrade', (req, socket, head) => {
    state.upgrades++
    const tls = socket as TLSSocket
    const peer = tls.getPeerCertificate()
    if (tls.authorized && peer.subject !== undefined) state.peerCommonNames.push(String(peer.subject.CN))
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('error', () => undefined))
  })
  await new Promise<void>((resolve) => httpsServer.listen(0, '127.0.0.1', resolve))
  state.port = (httpsServer.address() as AddressInfo).port
  t.teardown(() => {
    wss.close()
    httpsServer.closeAllConnections()
    return new Promise<void>((resolve) => httpsServer.close(() => resolve()))
  })
  return state
}

t.test('agentEndpoint table', async (t) => {
  const table: Array<[string, string]> = [
    ['ws://127.0.0.1:7443', 'ws://127.0.0.1:7443/_porchlight/connect'],
    ['wss://relay.example.com:7443/', 'wss://relay.example.com:7443/_porchlight/connect'],
    ['https://relay.example.com', 'wss://relay.example.com/_porchlight/connect'],
    ['http://relay.example.com:80', 'ws://relay.example.com/_porchlight/connect'],
    ['wss://relay.example.com/custom/path', 'wss://relay.example.com/custom/path'],
  ]
  for (const [input, want] of table) t.equal(agentEndpoint(input).href, want, input)
  t.throws(() => agentEndpoint('ftp://x'), { code: 'PL_ERR_LINK_CONNECT' })
})

t.test('HTTP failures and dial errors map to codes with the right retry flag', async (t) => {
  const url = new URL('wss://relay.example.com:7443/agent')
  const http: Array<[number, string, string, string, boolean]> = [
    [401, 'unauthorized', 'PL_ERR_AUTH_BAD_TOKEN', 'relay rejected the agent token (HTTP 401)', false],
    [403, 'PL_ERR_AUTH_CERT_REJECTED: certificate expired', 'PL_ERR_AUTH_CERT_REJECTED', 'client certificate rejected: certificate expired', false],
    [403, '', 'PL_ERR_AUTH_CERT_REJECTED', 'client certificate rejected: HTTP 403', false],
    [429, 'slow down', 'PL_ERR_AUTH_RATE_LIMITED', 'too many failed authentications from this address; try later', true],
    [409, 'PL_ERR_LINK_DUPLICATE: this agent is already connected from elsewhere', 'PL_ERR_LINK_DUPLICATE', 'this agent process already holds a link to this relay; retrying with backoff', true],
    [502, 'bad gateway', 'PL_ERR_LINK_CONNECT', 'cannot reach relay relay.example.com:7443: HTTP 502 bad gateway', true],
  ]
  for (const [status, body, code, message, retry] of http) {
    const err = httpFailure(url, status, body)
    t.same({ code: err.code, message: err.message, retry: err.retry }, { code, message, retry }, `HTTP ${status}`)
  }
  const dial: Array<[string, string, boolean]> = [
    ['ECONNREFUSED', 'PL_ERR_LINK_CONNECT', true],
    ['ENOTFOUND', 'PL_ERR_LINK_CONNECT', true],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'PL_ERR_AUTH_RELAY_UNTRUSTED', true],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'PL_ERR_AUTH_RELAY_UNTRUSTED', true],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'PL_ERR_AUTH_RELAY_UNTRUSTED', true],
    ['CERT_HAS_EXPIRED', 'PL_ERR_LINK_CLOCK_SKEW', true],
    ['CERT_NOT_YET_VALID', 'PL_ERR_LINK_CLOCK_SKEW', true],
    ['SELF_SIGNED_CERT_IN_CHAIN', 'PL_ERR_AUTH_RELAY_UNTRUSTED', true],
  ]
  for (const [errno, code, retry] of dial) {
    const err = classifyDialError(url, Object.assign(new Error(`boom ${errno}`), { code: errno }))
    t.same([err.code, err.retry], [code, retry], errno)
  }
})

t.test("a relay certificate outside its dates names this machine's clock", async (t) => {
  const url = new URL('wss://relay.example.com:7443/agent')
  const err = classifyDialError(url, Object.assign(new Error('certificate is not yet valid'), { code: 'CERT_NOT_YET_VALID' }), new Date('2001-01-01T00:00:00Z'))
  t.equal(err.message, "relay certificate for relay.example.com: certificate is not yet valid, by this machine's clock (2001-01-01T00:00:00.000Z); check the clock (NTP)")
})

t.test('nothing listening -> PL_ERR_LINK_CONNECT (retryable)', async (t) => {
  const port = await closedPort()
  const err = await dialRelay({ relay: `ws://127.0.0.1:${port}`, token: TOKEN, cert: null, ca: null, log: memoryLogger().log }).catch((e: unknown) => e)
  t.match(err, { code: 'PL_ERR_LINK_CONNECT', retry: true, message: /ECONNREFUSED/ })
})

t.test('a listener that never answers the upgrade -> PL_ERR_LINK_CONNECT after the handshake timeout', async (t) => {
  const sockets: net.Socket[] = []
  const server = net.createServer((s) => sockets.push(s))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  const started = Date.now()
  const err = await dialRelay({ relay: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`, token: TOKEN, cert: null, ca: null, log: memoryLogger().log, handshakeTimeoutMs: 300 }).catch((e: unknown) => e)
  t.match(err, { code: 'PL_ERR_LINK_CONNECT' })
  const took = Date.now() - started
  t.ok(took >= 250 && took < 2_000, `gave up after ${took} ms`)
})

t.test('an aborted dial rejects at once', async (t) => {
  const sockets: net.Socket[] = []
  const server = net.createServer((s) => sockets.push(s))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  const abort = new AbortController()
  const dial = dialRelay({ relay: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`, token: TOKEN, cert: null, ca: null, log: memoryLogger().log, signal: abort.signal })
  setTimeout(() => abort.abort(), 50)
  const started = Date.now()
  await t.rejects(dial, { code: 'PL_ERR_LINK_CONNECT', message: /dial aborted/ })
  t.ok(Date.now() - started < 1_000)
})

// SECURITY A17: the agent verifies the relay; untrusted relays are refused before the token is sent.
t.test('wss: verified relay certificate, client certificate from the bundle, untrusted relays refused before the token is sent', async (t) => {
  const ca = await createTestCa({ commonName: 'Relay Test CA' })
  const serverCert = await createTestCert(ca, { commonName: 'localhost', profile: 'server', hostnames: ['localhost', '127.0.0.1'] })
  const clientCert = await createTestCert(ca, { commonName: 'laptop' })
  const relay = await startTlsRelay(t, serverCert, ca)
  const dir = t.testdir()
  const bundle = join(dir, 'laptop.pem')
  await writeFile(bundle, `${clientCert.certPem}${clientCert.keyPem}${ca.certPem}`)
  const caFile = join(dir, 'ca.crt')
  await writeFile(caFile, ca.certPem)
  const log = memoryLogger().log

  const session = await dialRelay({ relay: `wss://localhost:${relay.port}`, token: TOKEN, cert: bundle, ca: null, log })
  t.equal(session.closed, false, 'connected with the bundle: its CA is trusted for the relay')
  t.same(relay.peerCommonNames, ['laptop'], 'the relay saw the client certificate')
  session.close()

  const viaCa = await dialRelay({ relay: `wss://localhost:${relay.port}`, token: TOKEN, cert: null, ca: caFile, log })
  t.equal(viaCa.closed, false, 'connected with only the extra `ca` file')
  viaCa.close()
  t.equal(relay.upgrades, 2)

  const untrusted = await dialRelay({ relay: `wss://localhost:${relay.port}`, token: TOKEN, cert: null, ca: null, log }).catch((e: unknown) => e)
  t.match(untrusted, { code: 'PL_ERR_AUTH_RELAY_UNTRUSTED', retry: true, message: /^relay certificate not trusted for localhost: / })
  t.equal(relay.upgrades, 2, 'no upgrade request (and so no token) reached the untrusted relay')

  const missing = await dialRelay({ relay: `wss://localhost:${relay.port}`, token: TOKEN, cert: join(dir, 'nope.pem'), ca: null, log }).catch((e: unknown) => e)
  t.match(missing, { code: 'PL_ERR_TLS_FILE', retry: false, message: /nope\.pem: ENOENT/ })
})

// SECURITY A17 (a): a relay certificate for another name.
t.test('wss: a certificate for another name is refused (hostname verification stays on)', async (t) => {
  const ca = await createTestCa()
  const wrongName = await createTestCert(ca, { commonName: 'other.test', profile: 'server', hostnames: ['other.test'] })
  const relay = await startTlsRelay(t, wrongName, ca)
  const caFile = join(t.testdir(), 'ca.crt')
  await writeFile(caFile, ca.certPem)
  const err = await dialRelay({ relay: `wss://localhost:${relay.port}`, token: TOKEN, cert: null, ca: caFile, log: memoryLogger().log }).catch((e: unknown) => e)
  t.match(err, { code: 'PL_ERR_AUTH_RELAY_UNTRUSTED' })
  t.equal(relay.upgrades, 0)
})

/** A minimal CONNECT proxy for tests: answers 200 and pipes to the target it was asked for. */
async function startConnectProxy(t: Test): Promise<{ url: string; targets: string[] }> {
  const targets: string[] = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    sockets.add(client)
    client.on('error', () => undefined)
    let head = ''
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1')
      const end = head.indexOf('\r\n\r\n')
      if (end < 0) return
      client.off('data', onData)
      const target = /^CONNECT (\S+) HTTP\/1\.1\r\n/.exec(head)?.[1] ?? ''
      targets.push(target)
      const colon = target.lastIndexOf(':')
      const upstream = net.connect(Number(target.slice(colon + 1)), '127.0.0.1', () => {
        client.write('HTTP/1.1 200 Connection established\r\n\r\n')
        client.pipe(upstream).pipe(client)
      })
      sockets.add(upstream)
      upstream.on('error', () => client.destroy())
    }
    client.on('data', onData)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, targets }
}

// SECURITY A17 through a proxy: TLS runs inside the CONNECT tunnel and is verified the same way.
t.test('wss through a CONNECT proxy: verified inside the tunnel, untrusted relays refused before the token', async (t) => {
  const ca = await createTestCa({ commonName: 'Relay Test CA' })
  const serverCert = await createTestCert(ca, { commonName: 'localhost', profile: 'server', hostnames: ['localhost'] })
  const clientCert = await createTestCert(ca, { commonName: 'laptop' })
  const relay = await startTlsRelay(t, serverCert, ca)
  const proxy = await startConnectProxy(t)
  const dir = t.testdir()
  const bundle = join(dir, 'laptop.pem')
  await writeFile(bundle, `${clientCert.certPem}${clientCert.keyPem}${ca.certPem}`)
  const log = memoryLogger().log

  const session = await dialRelay({ relay: `wss://localhost:${relay.port}`, token: TOKEN, cert: bundle, ca: null, log, env: { HTTPS_PROXY: proxy.url } })
  t.equal(session.closed, false, 'connected through the proxy')
  t.same(proxy.targets, [`localhost:${relay.port}`], 'the proxy was asked for the relay, by name')
  t.same(relay.peerCommonNames, ['laptop'], 'the client certificate crossed the tunnel')
  session.close()

  const untrusted = await dialRelay({ relay: `wss://localhost:${relay.port}`, token: TOKEN, cert: null, ca: null, log, proxy: proxy.url, env: {} }).catch((e: unknown) => e)
  t.match(untrusted, { code: 'PL_ERR_AUTH_RELAY_UNTRUSTED', message: /^relay certificate not trusted for localhost: / })
  t.equal(relay.upgrades, 1, 'no upgrade request (and so no token) reached the untrusted relay')

  const direct = await dialRelay({ relay: `wss://localhost:${relay.port}`, token: TOKEN, cert: bundle, ca: null, log, env: { HTTPS_PROXY: proxy.url, NO_PROXY: 'localhost' } })
  t.equal(proxy.targets.length, 2, 'NO_PROXY: the proxy was not asked again')
  direct.close()

  const refused = await dialRelay({ relay: `wss://localhost:${relay.port}`, token: TOKEN, cert: bundle, ca: null, log, proxy: `http://127.0.0.1:${await closedPort()}`, env: {} }).catch((e: unknown) => e)
  t.match(refused, { code: 'PL_ERR_LINK_PROXY', retry: true, message: /unreachable/ })
})
