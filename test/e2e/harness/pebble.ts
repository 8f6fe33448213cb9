import { execFileSync } from 'node:child_process'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import { join } from 'node:path'
import { ChildHandle } from './child.js'
import { initPki } from './pki.js'
import { freePort } from './ports.js'
import type { Scope } from './scope.js'
import { childDir } from './workdir.js'

/**
 * Debian's pebble (a test ACME CA) and pebble-challtestsrv (its DNS server and the DNS-01 hook's
 * target), started on loopback for one test. Pebble's VA connects to the relay's listeners on the
 * ports given (its httpPort/tlsPort) and resolves every name to 127.0.0.1 through challtestsrv.
 */
export interface Pebble {
  directory: string
  /** PEM file the relay trusts for pebble's own TLS (acme.directory_ca). */
  directoryCa: string
  /** pebble's issuing root, fetched from its management endpoint. */
  root(): Promise<string>
  /** An executable dns_hook that sets and clears TXT records in challtestsrv. */
  dnsHook: string
}

export function pebbleMissingReason(): string | null {
  for (const bin of ['pebble', 'pebble-challtestsrv']) {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' })
    } catch {
      return `${bin} is not installed (apt-get install pebble)`
    }
  }
  return null
}

/** `ipv4`: the address every name resolves to for pebble's validation (default 127.0.0.1). */
export async function startPebble(t: Scope, opts: { httpPort: number; tlsPort: number; validitySeconds?: number; ipv4?: string }): Promise<Pebble> {
  const pki = await initPki(t, 'localhost')
  const dir = childDir(t, 'pebble')
  const [acmePort, mgmtPort, dnsPort, chalMgmtPort] = [await freePort(), await freePort(), await freePort(), await freePort()]
  const env = { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_VA_ALWAYS_VALID: '0', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' }
  const chal = new ChildHandle(t, {
    label: 'challtestsrv',
    command: 'pebble-challtestsrv',
    args: ['-dns01', `127.0.0.1:${dnsPort}`, '-management', `127.0.0.1:${chalMgmtPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-defaultIPv4', opts.ipv4 ?? '127.0.0.1', '-defaultIPv6', ''],
    env, cwd: dir,
  })
  await chal.waitForLine('any', /Starting management server/, 10_000, 'challtestsrv ready')
  const configFile = join(dir, 'pebble.json')
  writeFileSync(configFile, JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${acmePort}`,
      managementListenAddress: `127.0.0.1:${mgmtPort}`,
      certificate: pki.serverCert,
      privateKey: pki.serverKey,
      httpPort: opts.httpPort,
      tlsPort: opts.tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
      ...(opts.validitySeconds ? { certificateValidityPeriod: opts.validitySeconds } : {}),
    },
  }))
  const pebble = new ChildHandle(t, { label: 'pebble', command: 'pebble', args: ['-strict', '-config', configFile, '-dnsserver', `127.0.0.1:${dnsPort}`], env, cwd: dir })
  await pebble.waitForLine('any', /ACME directory available/, 10_000, 'pebble ready')
  const dnsHook = join(dir, 'dns-hook.sh')
  writeFileSync(dnsHook, `#!/bin/sh
# acme.dns_hook for tests: present|cleanup FQDN VALUE -> challtestsrv's /set-txt and /clear-txt.
set -e
case "$1" in
  present) curl -fsS -X POST -d "{\\"host\\":\\"$2.\\",\\"value\\":\\"$3\\"}" http://127.0.0.1:${chalMgmtPort}/set-txt ;;
  cleanup) curl -fsS -X POST -d "{\\"host\\":\\"$2.\\"}" http://127.0.0.1:${chalMgmtPort}/clear-txt ;;
  *) echo "unknown action $1" >&2; exit 2 ;;
esac
`)
  chmodSync(dnsHook, 0o755)
  return {
    directory: `https://127.0.0.1:${acmePort}/dir`,
    directoryCa: pki.caCert,
    dnsHook,
    root: () => new Promise((resolve, reject) => {
      https.get(`https://127.0.0.1:${mgmtPort}/roots/0`, { ca: readFileSync(pki.caCert) }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => { body += c })
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET /roots/0: ${res.statusCode}`))))
      }).on('error', reject)
    }),
  }
}
