// Visitors' HTTPS listener with redirect_http: plain-HTTP visitors are sent to the HTTPS URL
// (308, same path and query), and the HTTPS side serves the site with a certificate chosen by SNI.
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { initPki, issueSiteCert } from './harness/pki.js'
import { splitHostPort } from './harness/ports.js'
import { RelayProcess, startAgent } from './harness/processes.js'
import { curlPage, visit } from './harness/visitor.js'
import { childDir } from './harness/workdir.js'

t.test('redirect_http sends visitors to HTTPS, which serves the site', async t => {
  const pki = await initPki(t)
  const siteCert = await issueSiteCert(pki, ['secure.localhost'])
  const origin = await startHttpOrigin(t, { '/page': (_req, res) => res.end('secure page') })
  const relay = new RelayProcess(t, {})
  relay.config.listen.public_tls = { address: '127.0.0.1:0', certs: [siteCert] }
  relay.config['redirect_http'] = true
  await relay.start()
  const tlsPort = splitHostPort(relay.publicTls ?? '').port
  await startAgent(t, relay, { tunnels: [{ http: 'secure', to: origin.url }] })

  const plain = await visit(relay.publicPort, { host: 'secure.localhost', path: '/page?x=1' })
  t.equal(plain.status, 308)
  t.equal(plain.headers['location'], `https://secure.localhost:${tlsPort}/page?x=1`)

  const page = await curlPage(`https://secure.localhost:${tlsPort}/page?x=1`, { dir: childDir(t, 'curl'), cacert: pki.caCert })
  t.equal(page.status, 200)
  t.equal(page.body, 'secure page')
})
