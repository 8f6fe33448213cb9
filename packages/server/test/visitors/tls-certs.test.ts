import t from 'tap'
import https from 'node:https'
import tls from 'node:tls'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { initCa } from '@porchlight/shared/pki'
import { loadSniCertificates } from '../../src/visitors/tls-certs.js'

t.test('SNI picks the certificate whose names cover the server name', async (t) => {
  const dir = t.testdir()
  await initCa({ dir: path.join(dir, 'one'), hostname: 'blog.example.org' })
  await initCa({ dir: path.join(dir, 'two'), hostname: 'shop.example.net' })
  const files = ['one', 'two'].map((d) => ({ cert: path.join(dir, d, 'server.crt'), key: path.join(dir, d, 'server.key') }))
  const certs = loadSniCertificates(files)
  t.equal(certs.pick('blog.example.org'), 0)
  t.equal(certs.pick('SHOP.example.net.'), 1)
  t.equal(certs.pick('unknown.example.com'), 0, 'default: the first certificate')

  const server = https.createServer({ cert: certs.cert, key: certs.key, SNICallback: certs.SNICallback }, (_req, res) => res.end('ok'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const port = (server.address() as AddressInfo).port
  const served = async (servername: string): Promise<string> => new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => { // lint-allow: relay-decides (test inspects the served certificate)
      const san = socket.getPeerCertificate().subjectaltname ?? ''
      socket.end()
      resolve(san)
    })
    socket.on('error', reject)
  })
  t.match(await served('shop.example.net'), /DNS:shop\.example\.net/)
  t.match(await served('blog.example.org'), /DNS:blog\.example\.org/)
})

t.test('a missing file is a clear PL_ERR_TLS_FILE naming it', async (t) => {
  t.throws(() => loadSniCertificates([{ cert: '/nonexistent/site.pem', key: '/nonexistent/site.key' }]), { code: 'PL_ERR_TLS_FILE', message: /\/nonexistent\/site\.pem/ })
})
