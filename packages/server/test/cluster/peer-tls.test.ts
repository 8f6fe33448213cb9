import https from 'node:https'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { loadPeerTls, peerAuthenticated, peerServerTlsOptions, requestPeer, type PeerTls } from '../../src/cluster/peer-tls.js'
import { createTestCa, createTestCert, type TestCa } from '../../../shared/src/pki/testing.js'

// The dialling side of cluster.peer_tls: a peer's certificate must come from the CA and name the
// advertised host (never the forwarded request's Host); an http:// peer is not dialled in clear.

async function peerTls(ca: TestCa, hostnames: string[]): Promise<PeerTls> {
  const leaf = await createTestCert(ca, { commonName: hostnames[0]!, profile: 'peer', hostnames })
  return { cert: Buffer.from(leaf.certPem), key: Buffer.from(leaf.keyPem), ca: Buffer.from(ca.certPem) }
}

/** An https peer listener on 127.0.0.1 with `tls`, answering whether the client certificate verified. */
async function listener(t: Test, tls: PeerTls): Promise<number> {
  const server = https.createServer(peerServerTlsOptions(tls), (req, res) => res.end(peerAuthenticated(req.socket) ? 'client verified' : 'no client certificate'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return (server.address() as AddressInfo).port
}

function ask(url: string, tls: PeerTls | null, host = 'one.localhost'): Promise<string> {
  return new Promise((resolve) => {
    let req
    try {
      req = requestPeer(new URL(url), { method: 'GET', path: '/', headers: { host }, agent: false, setHost: false }, tls)
    } catch (err) {
      resolve(`threw: ${(err as Error).message}`)
      return
    }
    req.on('response', (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => resolve(body))
    })
    req.on('error', (err) => resolve(`error: ${(err as NodeJS.ErrnoException).code ?? err.message}`))
    req.end()
  })
}

t.test('requestPeer verifies the peer against the CA and the advertised host, and presents its own certificate', async (t) => {
  const ca = await createTestCa({ commonName: 'cluster CA' })
  const self = await peerTls(ca, ['127.0.0.11'])
  const port = await listener(t, await peerTls(ca, ['127.0.0.1']))
  t.equal(await ask(`https://127.0.0.1:${port}`, self), 'client verified', 'both sides verified, although Host names another name')

  const wrongName = await listener(t, await peerTls(ca, ['one.localhost']))
  t.equal(await ask(`https://127.0.0.1:${wrongName}`, self), 'error: ERR_TLS_CERT_ALTNAME_INVALID', 'a certificate for the Host header, not the advertised host: refused')

  const other = await createTestCa({ commonName: 'another CA' })
  const foreign = await listener(t, await peerTls(other, ['127.0.0.1']))
  t.match(await ask(`https://127.0.0.1:${foreign}`, self), /^error: (SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)$/, 'a peer certificate from another CA: refused')

  t.equal(await ask('http://127.0.0.1:1', self), 'threw: peer http://127.0.0.1:1 is not https:// while cluster.peer_tls is set', 'no downgrade to plain http')
})

t.test('loadPeerTls: a key that does not match the certificate, or a file without PEM, is PL_ERR_TLS_FILE naming it', async (t) => {
  const ca = await createTestCa({ commonName: 'cluster CA' })
  const [a, b] = [await createTestCert(ca, { commonName: 'a', profile: 'peer' }), await createTestCert(ca, { commonName: 'b', profile: 'peer' })]
  const dir = t.testdir({ 'a.crt': a.certPem, 'b.key': b.keyPem, 'a.key': a.keyPem, 'ca.crt': ca.certPem, 'empty.crt': 'nothing\n' })
  const files = (cert: string, key: string) => ({ cert: join(dir, cert), key: join(dir, key), ca: join(dir, 'ca.crt') })
  t.ok(loadPeerTls(files('a.crt', 'a.key')).cert.length > 0, 'a matching pair loads')
  t.throws(() => loadPeerTls(files('a.crt', 'b.key')), { code: 'PL_ERR_TLS_FILE', message: new RegExp(`^cannot load TLS file ${join(dir, 'b.key')}: `) })
  t.throws(() => loadPeerTls(files('empty.crt', 'a.key')), { code: 'PL_ERR_TLS_FILE', message: `cannot load TLS file ${join(dir, 'empty.crt')}: no CERTIFICATE PEM block` })
})
