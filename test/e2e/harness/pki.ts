import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { issueClientCert, loadCa } from '../../../packages/shared/src/pki/index.js'
import { createTestCa, createTestCert, type TestCa } from '../../../packages/shared/src/pki/testing.js'
import type { Scope } from './scope.js'
import { runCli, type CliResult } from './processes.js'
import { childDir } from './workdir.js'

/**
 * Throwaway PKI for e2e tests. The normal path goes through the product's own CLI
 * (`porchlight-relay ca init`, `cert issue`, `cert revoke`); certificates the CLI refuses to make
 * (expired, not yet valid, another CA, server.crt as a client) come from the shared PKI code.
 */
export interface RelayPki {
  /** The PKI directory (relay.yaml `pki:`). */
  dir: string
  caCert: string
  serverCert: string
  serverKey: string
  /** A scratch directory for bundles this test writes. */
  bundles: string
}

/** One client bundle file (cert + key + CA, PEM) and its serial. */
export interface Bundle {
  file: string
  serial: string
}

function expectOk(what: string, res: CliResult): CliResult {
  if (res.code !== 0) throw new Error(`${what} exited ${String(res.code)}\nstdout: ${res.stdout}\nstderr: ${res.stderr}`)
  return res
}

/** `porchlight-relay ca init --pki DIR --hostname H` into a fresh directory of this test. */
export async function initPki(t: Scope, hostname = 'localhost'): Promise<RelayPki> {
  const root = childDir(t, 'pki')
  const dir = join(root, 'pki')
  expectOk('ca init', await runCli('relay', ['ca', 'init', '--pki', dir, '--hostname', hostname]))
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    bundles: root,
  }
}

/** `porchlight-relay cert issue NAME --pki DIR --out F`; the serial is read from what it printed. */
export async function issueCert(pki: RelayPki, name: string, fileName = `${name}.pem`, opts: { visitor?: boolean } = {}): Promise<Bundle> {
  const file = join(pki.bundles, fileName)
  const res = expectOk(`cert issue ${name}`, await runCli('relay', ['cert', 'issue', name, '--pki', pki.dir, '--out', file, ...(opts.visitor ? ['--visitor'] : [])]))
  const serial = /serial ([0-9a-f]+)/.exec(res.stdout)?.[1]
  if (serial === undefined) throw new Error(`cert issue ${name}: no serial in its output: ${res.stdout}`)
  return { file, serial }
}

/** `porchlight-relay cert revoke NAME|SERIAL --pki DIR`. */
export async function revokeCert(pki: RelayPki, target: string): Promise<CliResult> {
  return expectOk(`cert revoke ${target}`, await runCli('relay', ['cert', 'revoke', target, '--pki', pki.dir]))
}

/** A certificate for `name` from the relay's own CA with chosen dates (expired, not yet valid). */
export async function issueDatedCert(pki: RelayPki, name: string, dates: { notBefore: Date; notAfter: Date }, fileName: string): Promise<Bundle> {
  const file = join(pki.bundles, fileName)
  const issued = await issueClientCert({ dir: pki.dir, name, out: file, notBefore: dates.notBefore, notAfter: dates.notAfter })
  return { file, serial: issued.serial }
}

/** `ca init --hostname localhost` names its CA like this; a look-alike copies the subject exactly. */
const lookalikeSubject = { commonName: 'Porchlight CA localhost', organization: 'Porchlight' }

/** A client certificate with CN `name` signed by a CA the relay has never seen, with the real CA's subject. */
export async function foreignCert(pki: RelayPki, name: string, fileName: string, ca?: TestCa): Promise<Bundle> {
  const issuer = ca ?? await createTestCa({ commonName: lookalikeSubject.commonName, organization: lookalikeSubject.organization })
  const leaf = await createTestCert(issuer, { commonName: name })
  const file = join(pki.bundles, fileName)
  writeFileSync(file, `${leaf.certPem}${leaf.keyPem}${issuer.certPem}`, { mode: 0o600 })
  return { file, serial: leaf.serial }
}

/** A bundle holding the relay's own server.crt + server.key (a certificate without clientAuth). */
export function serverCertBundle(pki: RelayPki, fileName = 'server-as-client.pem'): string {
  const file = join(pki.bundles, fileName)
  const pem = [pki.serverCert, pki.serverKey, pki.caCert].map(f => readFileSync(f, 'utf8')).join('')
  writeFileSync(file, pem, { mode: 0o600 })
  return file
}

/**
 * A serverAuth certificate from the relay's CA for exactly these hostnames (visitors' HTTPS,
 * `listen.public_tls`): server.crt only names localhost, and curl verifies `share.localhost`.
 */
export async function issueSiteCert(pki: RelayPki, hostnames: string[], fileBase = 'sites'): Promise<{ cert: string; key: string }> {
  const ca = await loadCa(pki.dir)
  const leaf = await createTestCert(ca, { commonName: hostnames[0] ?? 'localhost', profile: 'server', hostnames })
  const cert = join(pki.bundles, `${fileBase}.crt`)
  const key = join(pki.bundles, `${fileBase}.key`)
  writeFileSync(cert, leaf.certPem, { mode: 0o644 })
  writeFileSync(key, leaf.keyPem, { mode: 0o600 })
  return { cert, key }
}

/**
 * cluster.peer_tls for one relay: a certificate from `ca` with serverAuth and clientAuth (a relay
 * both serves listen.peer and dials its peers with it) naming `hostnames` (IPs go to IP SANs).
 */
export async function issuePeerCert(pki: RelayPki, hostnames: string[], fileBase: string, ca?: TestCa): Promise<{ cert: string; key: string; ca: string }> {
  const issuer = ca ?? await loadCa(pki.dir)
  const leaf = await createTestCert(issuer, { commonName: hostnames[0] ?? 'localhost', profile: 'peer', hostnames })
  const cert = join(pki.bundles, `${fileBase}.crt`)
  const key = join(pki.bundles, `${fileBase}.key`)
  writeFileSync(cert, leaf.certPem, { mode: 0o644 })
  writeFileSync(key, leaf.keyPem, { mode: 0o600 })
  return { cert, key, ca: pki.caCert }
}

/** relay.yaml keys for an agents listener on wss:// with client certificates from this PKI. */
export function relayTlsKeys(pki: RelayPki): { pki: string; tls: { cert: string; key: string } } {
  return { pki: pki.dir, tls: { cert: pki.serverCert, key: pki.serverKey } }
}
