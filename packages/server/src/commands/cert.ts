import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { PorchlightError } from '@porchlight/shared/errors'
import { issueClientCert, listCerts, pkiPath, revokeCert, type CertListing, type ClientCertKind, type IssueClientCertResult } from '@porchlight/shared/pki'

type Print = (line: string) => void

/** `porchlight-relay cert issue NAME`: writes the bundle (cert, key, CA) to `out`, default ./NAME.pem. */
export async function runCertIssue(opts: { pki: string; name: string; days?: number; out?: string; kind?: ClientCertKind }, print: Print): Promise<IssueClientCertResult> {
  const out = opts.out ?? join(process.cwd(), `${opts.name}.pem`)
  const kind = opts.kind ?? 'agent'
  const result = await issueClientCert({ dir: opts.pki, name: opts.name, days: opts.days ?? 365, out, kind })
  print(`issued ${kind} certificate for ${result.name}: serial ${result.serial}, expires ${result.notAfter.toISOString().slice(0, 10)}`)
  print(`wrote ${out} (certificate, private key and CA; mode 0600, keep it secret)`)
  if (kind === 'visitor') {
    print(`agent.yaml:  access: { client_certs: true }   (or client_certs: [${result.name}])`)
    print('browsers: import it as PKCS#12 (openssl pkcs12 -export -in FILE -out FILE.p12)')
  } else {
    print(`agent.yaml:  cert: ${out}`)
    print(`relay.yaml:  agents.${result.name}.require_cert: true`)
  }
  return result
}

/** `porchlight-relay cert revoke NAME|SERIAL`. */
export async function runCertRevoke(opts: { pki: string; target: string }, print: Print): Promise<string[]> {
  const serials = await revokeCert({ dir: opts.pki, nameOrSerial: opts.target })
  for (const serial of serials) print(`revoked ${serial}`)
  print(`${serials.length} certificate${serials.length === 1 ? '' : 's'} revoked; a connected agent using one is cut off within 5 s`)
  return serials
}

/** `porchlight-relay cert list`: NAME, SERIAL, EXPIRES, REVOKED as an aligned table. */
export async function runCertList(opts: { pki: string }, print: Print): Promise<CertListing[]> {
  // A directory without a CA has issued nothing: say that it is the wrong directory, not "none yet".
  await access(pkiPath(opts.pki, 'caCert')).catch((err: unknown) => {
    throw new PorchlightError('PL_ERR_PKI_MISSING', [opts.pki], { cause: err })
  })
  const certs = await listCerts(opts.pki)
  if (certs.length === 0) {
    print('no certificates issued yet (porchlight-relay cert issue NAME)')
    return certs
  }
  const rows = [['NAME', 'SERIAL', 'EXPIRES', 'REVOKED'], ...certs.map((c) => [c.name, c.serial, c.notAfter.slice(0, 10), c.revoked ? 'yes' : 'no'])]
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  for (const row of rows) {
    print(row.map((cell, i) => (i < 3 ? cell.padEnd(widths[i] ?? 0) : cell)).join('  '))
  }
  return certs
}
