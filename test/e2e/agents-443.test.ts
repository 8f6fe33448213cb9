// Agents on 443 (issue 12): `listen.agents: shared` puts the agents' endpoint on the visitors' HTTPS
// listener at /_porchlight/connect on the relay's own domain, with client certificates checked for
// agents that need them, while visitors on the same port are served as before; and the agent
// reaching the relay through a real HTTP CONNECT proxy (Debian's tinyproxy), or around it (NO_PROXY).
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import tls from 'node:tls'
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { initPki, issueCert, issueSiteCert } from './harness/pki.js'
import { splitHostPort } from './harness/ports.js'
import { RelayProcess, startAgent, startRelay, type AgentProcess } from './harness/processes.js'
import type { Scope } from './harness/scope.js'
import { startTinyproxy, tinyproxyMissingReason } from './harness/tinyproxy.js'
import { upgradeOverTls } from './harness/tls-upgrade.js'
import { curlPage, type CurlPage } from './harness/visitor.js'
import { pollUntil } from './harness/wait.js'
import { childDir } from './harness/workdir.js'

const AGENTS_PATH = '/_porchlight/connect'

// One CA; the visitors' certificate also names the relay's own domain (localhost), which is what
// agents verify on the shared port.
const pki = await initPki(t)
const siteCert = await issueSiteCert(pki, ['localhost', 'open.localhost', 'desk.localhost', 'proxied.localhost', 'direct.localhost', 'yaml.localhost', 'nobody.localhost'])
const origin = await startHttpOrigin(t)
const relay = new RelayProcess(t, {
  agents: {
    laptop: { hosts: ['open.localhost', 'proxied.localhost', 'direct.localhost', 'yaml.localhost', 'refused.localhost'] },
    desk: { hosts: ['desk.localhost'], require_cert: true },
  },
})
relay.config['pki'] = pki.dir
relay.config.listen.agents = 'shared'
relay.config.listen.public_tls = { address: '127.0.0.1:0', certs: [siteCert] }
await relay.start()
const tlsPort = splitHostPort(relay.publicTls ?? '').port
// No port in a real deployment (wss://tunnel.example.com means 443); here the ephemeral one.
const relayUrl = `wss://localhost:${tlsPort}`
const scratch = childDir(t, 'curl')

function browse(url: string, args: string[] = []): Promise<CurlPage> {
  return curlPage(url, { dir: scratch, cacert: pki.caCert, args })
}

function sharedAgent(t: Scope, opts: { name?: string; tunnel: string; cert?: string; env?: Record<string, string>; proxy?: string; expectExit?: boolean; waitFor?: RegExp; forwarding?: number }): Promise<AgentProcess> {
  return startAgent(t, relay, {
    name: opts.name ?? 'laptop',
    tunnels: [{ http: opts.tunnel, to: origin.url }],
    extra: {
      relay: relayUrl,
      ...(opts.cert !== undefined ? { cert: opts.cert } : { ca: pki.caCert }),
      ...(opts.proxy !== undefined ? { proxy: opts.proxy } : {}),
    },
    ...(opts.env !== undefined ? { env: opts.env } : {}),
    ...(opts.expectExit === true ? { expectExit: true } : {}),
    ...(opts.waitFor !== undefined ? { waitFor: opts.waitFor } : {}),
    ...(opts.forwarding !== undefined ? { forwarding: opts.forwarding } : {}),
  })
}

t.test('the relay binds no agents port of its own: agents dial the visitors\' HTTPS address', async t => {
  const ready = relay.logs().find(l => l['msg'] === 'ready')
  t.equal(ready?.['agents'], relay.publicTls)
  t.equal(relay.agentsPort, tlsPort)
})

t.test('an agent connects on the shared HTTPS port and its site is served on that port', async t => {
  const agent = await sharedAgent(t, { tunnel: 'open' })
  t.equal(agent.urls[0], `https://open.localhost:${tlsPort}`)
  const page = await browse(`https://open.localhost:${tlsPort}/hello`)
  t.equal(page.status, 200)
  t.equal((JSON.parse(page.body) as { url: string }).url, '/hello')

  t.test('the agents\' path on any other Host is an ordinary visitor request', async t => {
    const before = origin.requestCount
    const routed = await browse(`https://open.localhost:${tlsPort}${AGENTS_PATH}`)
    t.equal(routed.status, 200, 'routed to the site like any path')
    t.equal((JSON.parse(routed.body) as { url: string }).url, AGENTS_PATH)
    t.equal(origin.requestCount, before + 1)
    const unknown = await browse(`https://nobody.localhost:${tlsPort}${AGENTS_PATH}`)
    t.equal(unknown.status, 404, 'unknown host page')
    // An agent's upgrade with a valid token, but for a published site's Host: the site's answer
    // (the origin refuses a WebSocket on that path), never the agents' handler.
    const upgrades = origin.requestCount
    const foreign = await upgradeOverTls({ port: tlsPort, caCert: pki.caCert, token: relay.tokens['laptop']!, bundle: null, path: AGENTS_PATH, host: `open.localhost:${tlsPort}` })
    t.equal(foreign.status, 404)
    t.equal(origin.requestCount, upgrades + 1, 'the origin saw the upgrade')
    const sessions = (await relay.connectedAgents()).filter(a => a.name === 'laptop')
    t.equal(sessions.length, 1, 'no second laptop session')
  })

  t.test('on the relay\'s own domain only the exact path is the agents\'', async t => {
    const plain = await browse(`https://localhost:${tlsPort}${AGENTS_PATH}`)
    t.equal(plain.status, 426, 'the agents\' endpoint: upgrade required')
    const query = await browse(`https://localhost:${tlsPort}${AGENTS_PATH}?x=1`)
    t.equal(query.status, 404, 'a query makes it a visitor request (the domain is never a site)')
    const other = await browse(`https://localhost:${tlsPort}/_porchlight/connect/x`)
    t.equal(other.status, 404)
    const badToken = await upgradeOverTls({ port: tlsPort, caCert: pki.caCert, token: 'wrong-token-wrong-token-wrong-token', bundle: null, path: AGENTS_PATH, host: `localhost:${tlsPort}`, localAddress: '127.0.0.4' })
    t.equal(badToken.status, 401, 'the same authentication as the dedicated listener')
  })
})

t.test('require_cert on the shared port: refused without a certificate, accepted with one', async t => {
  const refused = await sharedAgent(t, { name: 'desk', tunnel: 'desk', expectExit: true })
  t.equal(await refused.exited, 1)
  t.match(refused.stderr(), /PL_ERR_AUTH_CERT_REJECTED: .*no client certificate/)

  const bundle = await issueCert(pki, 'desk')
  const agent = await sharedAgent(t, { name: 'desk', tunnel: 'desk', cert: bundle.file })
  t.equal(agent.urls[0], `https://desk.localhost:${tlsPort}`)
  const page = await browse(`https://desk.localhost:${tlsPort}/`)
  t.equal(page.status, 200)

  // Another agent's certificate does not open desk's door.
  const laptopBundle = await issueCert(pki, 'laptop')
  const wrong = await upgradeOverTls({ port: tlsPort, caCert: pki.caCert, token: relay.tokens['desk']!, bundle: laptopBundle.file, path: AGENTS_PATH, host: `localhost:${tlsPort}`, localAddress: '127.0.0.5' })
  t.equal(wrong.status, 403)
  t.match(wrong.body, /certificate belongs to agent laptop/)
})

/** A relay with its agents on a dedicated plain ws:// port (the default layout). */
function startRelayPlain(t: Scope): Promise<RelayProcess> {
  return startRelay(t, { agents: { laptop: { hosts: ['plain.localhost', 'oldpath.localhost'] } } })
}

/** One HTTPS request to the relay's domain on a port; what the client kept to resume with, and whether it did. */
async function tlsVisit(port: number, maxVersion: tls.SecureVersion, session?: Buffer): Promise<{ reused: boolean; sessions: Buffer[] }> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(pki.caCert), maxVersion, ...(session ? { session } : {}) })
  const sessions: Buffer[] = []
  socket.on('session', (s: Buffer) => sessions.push(s))
  await new Promise<void>((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject) })
  // Read now: after the close the answer is gone.
  const reused = socket.isSessionReused()
  socket.end(`GET / HTTP/1.1\r\nHost: localhost:${port}\r\nConnection: close\r\n\r\n`)
  socket.resume()
  await new Promise<void>(resolve => socket.once('close', () => resolve()))
  return { reused, sessions }
}

t.test('no TLS session resumption on the shared port: every agent certificate is verified again (SECURITY A5c)', async t => {
  for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
    const first = await tlsVisit(tlsPort, maxVersion)
    t.ok(first.sessions.length > 0, `${maxVersion}: the client kept a session to offer`)
    for (const session of first.sessions) t.equal((await tlsVisit(tlsPort, maxVersion, session)).reused, false, `${maxVersion}: not resumed`)
  }
  // Control: a visitors-only HTTPS listener (agents on their own port) does resume, so the check can fail.
  const plain = new RelayProcess(t, { agents: { laptop: {} } })
  plain.config['pki'] = pki.dir
  plain.config.listen.public_tls = { address: '127.0.0.1:0', certs: [siteCert] }
  await plain.start()
  const plainPort = splitHostPort(plain.publicTls ?? '').port
  const first = await tlsVisit(plainPort, 'TLSv1.2')
  t.ok(first.sessions.length > 0, 'the control listener hands out a session')
  t.equal((await tlsVisit(plainPort, 'TLSv1.2', first.sessions[0])).reused, true, 'control: resumed')
})

const skipProxy = tinyproxyMissingReason()
t.test('through an HTTP CONNECT proxy (tinyproxy)', { skip: skipProxy ?? false }, async t => {
  const proxy = await startTinyproxy(t, { connectPorts: [tlsPort] })

  t.test('HTTPS_PROXY: the link goes through the proxy, TLS verified inside it', async t => {
    const agent = await sharedAgent(t, { tunnel: 'proxied', env: { HTTPS_PROXY: proxy.url } })
    t.equal(agent.urls[0], `https://proxied.localhost:${tlsPort}`)
    const logged = await pollUntil(async () => proxy.log(), log => log.includes(`CONNECT localhost:${tlsPort}`), { timeoutMs: 5000 })
    t.ok(logged.ok, 'tinyproxy logged the CONNECT to the relay')
    const page = await browse(`https://proxied.localhost:${tlsPort}/via-proxy`)
    t.equal(page.status, 200)
  })

  t.test('agent.yaml proxy: with a client certificate through the tunnel', async t => {
    const before = (proxy.log().match(/CONNECT localhost/g) ?? []).length
    const bundle = await issueCert(pki, 'laptop', 'laptop-yaml.pem')
    const agent = await sharedAgent(t, { tunnel: 'yaml', cert: bundle.file, proxy: proxy.url })
    t.equal(agent.urls[0], `https://yaml.localhost:${tlsPort}`)
    t.ok((proxy.log().match(/CONNECT localhost/g) ?? []).length > before, 'one more CONNECT')
  })

  t.test('NO_PROXY: the relay is dialled directly, the proxy never asked', async t => {
    // A proxy address where nothing listens: any attempt to use it would fail.
    const dead = createServer()
    await new Promise<void>(resolve => dead.listen(0, '127.0.0.1', resolve))
    const deadPort = (dead.address() as { port: number }).port
    await new Promise<void>(resolve => dead.close(() => resolve()))
    const agent = await sharedAgent(t, { tunnel: 'direct', env: { HTTPS_PROXY: `http://127.0.0.1:${deadPort}`, NO_PROXY: 'example.com,localhost' } })
    t.equal(agent.urls[0], `https://direct.localhost:${tlsPort}`)
  })

  t.test('HTTP_PROXY for a ws:// relay on its dedicated port (any path still accepted there)', async t => {
    const plain = await startRelayPlain(t)
    const wsProxy = await startTinyproxy(t, { connectPorts: [plain.agentsPort] })
    // HTTPS_PROXY is for wss:// only: pointing it at nothing proves it is not used here.
    const agent = await startAgent(t, plain, { tunnels: [{ http: 'plain', to: origin.url }], env: { HTTP_PROXY: wsProxy.url, HTTPS_PROXY: 'http://127.0.0.1:1' } })
    t.equal(agent.forwarding.length, 1)
    t.match(wsProxy.log(), new RegExp(`CONNECT 127\\.0\\.0\\.1:${plain.agentsPort}`))
    const old = await startAgent(t, plain, { tunnels: [{ http: 'oldpath', to: origin.url }], extra: { relay: `${plain.agentsUrl}/agent` } })
    t.equal(old.forwarding.length, 1, 'an explicit /agent path (older configs) still connects')
  })

  t.test('a proxy that refuses the relay\'s port: PL_ERR_LINK_PROXY with its status', async t => {
    const strict = await startTinyproxy(t, { connectPorts: [tlsPort === 1 ? 2 : 1] })
    const agent = await sharedAgent(t, { tunnel: 'refused', env: { HTTPS_PROXY: strict.url }, forwarding: 0 })
    const line = await agent.waitForLine(/"code":"PL_ERR_LINK_PROXY"/, 10_000)
    t.match(line, new RegExp(`proxy 127\\.0\\.0\\.1:${strict.port}: refused CONNECT to localhost:${tlsPort} with 403`))
    t.notMatch(agent.stderr(), new RegExp(relay.tokens['laptop']!), 'no token in the output')
  })

  t.test('a proxy nobody listens on: PL_ERR_LINK_PROXY unreachable', async t => {
    const agent = await sharedAgent(t, { tunnel: 'refused', proxy: 'http://127.0.0.1:1', forwarding: 0 })
    t.match(await agent.waitForLine(/"code":"PL_ERR_LINK_PROXY"/, 10_000), /proxy 127\.0\.0\.1:1: unreachable/)
  })
})
