import { initCa, type InitCaResult } from '@porchlight/shared/pki'

export interface CaInitOptions {
  /** PKI directory (relay.yaml `pki:`). */
  pki: string
  /** Name agents dial; goes into server.crt. Default localhost. */
  hostname?: string
  force?: boolean
}

/** `porchlight-relay ca init`: create the CA and the agents listener's certificate, say what to configure. */
export async function runCaInit(opts: CaInitOptions, out: (line: string) => void): Promise<InitCaResult> {
  const result = await initCa({ dir: opts.pki, hostname: opts.hostname ?? 'localhost', force: opts.force ?? false })
  const names = [...result.serverNames.dns, ...result.serverNames.ips].join(', ')
  out(`created CA ${result.caCertFile} (key ${result.caKeyFile}, mode 0600)`)
  out(`created server certificate ${result.serverCertFile} for ${names}`)
  out(`valid until ${result.notAfter.toISOString().slice(0, 10)}`)
  out('relay.yaml:')
  out(`  pki: ${opts.pki}`)
  out(`  tls: { cert: ${result.serverCertFile}, key: ${result.serverKeyFile} }`)
  out('next: porchlight-relay cert issue NAME   (a client certificate bundle for agent NAME)')
  return result
}
