// Certificate renewal on a homeserver: new files for the visitors' HTTPS listener and a SIGHUP are
// enough (SECURITY F11). New handshakes get the new certificate, with or without SNI; a connection
// made before keeps working; a broken file keeps the running certificate.
import { readFileSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:https'
import { X509Certificate } from 'node:crypto'
import { connect } from 'node:tls'
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { initPki, issueSiteCert } from './harness/pki.js'
import { splitHostPort } from './harness/ports.js'
import { RelayProcess, startAgent } from './harness/processes.js'

const pki = await initPki(t)
const files = await issueSiteCert(pki, ['rot.localhost'], 'rot')
const origin = await startHttpOrigin(t)
const relay = new RelayProcess(t, {})
relay.config['pki'] = pki.dir
relay.config.listen.public_tls = { address: '127.0.0.1:0', certs: [files] }
await relay.start()
const tlsPort = splitHostPort(relay.publicTls ?? '').port
await startAgent(t, relay, { tunnels: [{ http: 'rot', to: origin.url }] })
const ca = readFileSync(pki.caCert)

/** Serial of the certificate the listener presents to a new handshake (SNI unless noSni). */
function servedSerial(noSni = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: tlsPort, ca, ...(noSni ? { rejectUnauthorized: false } : { servername: 'rot.localhost' }) }, () => {
      const serial = socket.getPeerCertificate().serialNumber
      socket.end()
      resolve(serial.toUpperCase())
    })
    socket.once('error', reject)
  })
}

function fileSerial(): string {
  return new X509Certificate(readFileSync(files.cert)).serialNumber.toUpperCase()
}

/** GET / over one kept-alive connection; resolves with the status and the client port. */
function get(agent: Agent): Promise<{ status: number; localPort: number | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: tlsPort, servername: 'rot.localhost', headers: { host: 'rot.localhost' }, path: '/status/200', ca, agent }, res => {
      const localPort = res.socket.localPort
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, localPort }))
    })
    req.once('error', reject)
    req.end()
  })
}

t.test('SIGHUP after a renewal: new handshakes get the new certificate, live connections stay', async t => {
  const first = fileSerial()
  t.equal(await servedSerial(), first, 'serving the first certificate')
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => keepAlive.destroy())
  const before = await get(keepAlive)
  t.equal(before.status, 200)

  await issueSiteCert(pki, ['rot.localhost'], 'rot')
  const second = fileSerial()
  t.not(second, first, 'the renewal wrote a new certificate to the same files')
  const reloads = relay.logs().filter(l => l['msg'] === 'config reloaded').length
  process.kill(relay.pid, 'SIGHUP')
  await relay.waitForLog(l => l['msg'] === 'config reloaded' && relay.logs().filter(x => x['msg'] === 'config reloaded').length > reloads, 5000, 'reload')
  t.equal(await servedSerial(), second, 'a new handshake with SNI gets the renewed certificate')
  t.equal(await servedSerial(true), second, 'so does one without SNI')
  const after = await get(keepAlive)
  t.equal(after.status, 200, 'the connection made before the reload still serves')
  t.equal(after.localPort, before.localPort, 'on the same TCP connection')

  // A certificate that does not match its key (a renewal half-written): the loader accepts the
  // PEM, building the TLS context fails, and nothing changes.
  writeFileSync(files.cert, readFileSync(pki.serverCert))
  process.kill(relay.pid, 'SIGHUP')
  const failed = await relay.waitForLog(l => l['msg'] === 'config reload failed; keeping the running config', 5000, 'reload failure')
  t.match(JSON.stringify(failed), /PL_ERR_TLS_FILE/, 'a certificate that does not match its key is refused with its code')
  t.equal(await servedSerial(), second, 'and the running certificate stays')

  writeFileSync(files.cert, 'not a certificate\n')
  process.kill(relay.pid, 'SIGHUP')
  const invalid = await relay.waitForLog(l => JSON.stringify(l).includes('no PEM block'), 5000, 'config check failure')
  t.match(JSON.stringify(invalid), /PL_ERR_CONFIG_INVALID/, 'a file with no certificate fails the config check')
  t.equal(await servedSerial(), second, 'and the running certificate still stays')
})
