// A local origin served over HTTPS (`to: https://...`): the agent verifies its certificate (system
// roots plus NODE_EXTRA_CA_CERTS), sends SNI from host_header, and a name mismatch is a 502.
import { readFileSync } from 'node:fs'
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'
import t from 'tap'
import { initPki } from './harness/pki.js'
import { startAgent, startRelay } from './harness/processes.js'
import { visit } from './harness/visitor.js'

t.test('https origin: verified, SNI and Host from host_header; a certificate for another name is a 502', async t => {
  const pki = await initPki(t, 'localhost')
  const seen: Array<{ host: string | undefined; sni: string | false | null }> = []
  const origin = createServer({ cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) }, (req, res) => {
    seen.push({ host: req.headers.host, sni: (req.socket as TLSSocket).servername })
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end(`secure ${req.url}`)
  })
  await new Promise<void>(resolve => origin.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => new Promise<void>(resolve => { origin.closeAllConnections(); origin.close(() => resolve()) }))
  const port = (origin.address() as AddressInfo).port

  const relay = await startRelay(t)
  await startAgent(t, relay, {
    tunnels: [
      { http: 'secure', to: `https://127.0.0.1:${port}`, host_header: 'localhost' },
      { http: 'wrongname', to: `https://127.0.0.1:${port}`, host_header: 'not-in-the-cert.test' },
    ],
    // The throwaway CA that signed the origin's certificate, trusted the way an admin would.
    env: { NODE_EXTRA_CA_CERTS: pki.caCert },
  })

  const ok = await visit(relay.publicPort, { host: 'secure.localhost', path: '/a?b=1' })
  t.equal(ok.status, 200)
  t.equal(ok.text, 'secure /a?b=1')
  t.same(seen.at(-1), { host: 'localhost', sni: 'localhost' }, 'Host and SNI are the host_header')

  const before = seen.length
  const bad = await visit(relay.publicPort, { host: 'wrongname.localhost', path: '/', headers: { accept: 'text/plain' } })
  t.equal(bad.status, 502, 'a certificate for another name is refused by the agent')
  t.equal(seen.length, before, 'no request reached the origin over the unverified connection')
})
