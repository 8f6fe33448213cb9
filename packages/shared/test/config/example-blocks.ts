/** Shared by examples.test.ts and completeness.test.ts. */
/**
 * The example's file-naming blocks (public_tls, tls, acme) uncommented, as a user does once the
 * files exist, with the keys that need them switched on and the files in a test directory.
 */
export function everyKey(text: string): string {
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const start = /^(\s*)# (public_tls|tls|acme|cluster):$/.exec(lines[i] ?? '')
    if (start === null) continue
    const indent = start[1] ?? ''
    for (let k = i; k < lines.length && (lines[k] ?? '').startsWith(`${indent}#`) && (lines[k] ?? '').trim() !== '#'; k++) {
      lines[k] = indent + (lines[k] ?? '').slice(indent.length + 2)
    }
  }
  return lines.join('\n')
    .replace('/etc/porchlight/dns-hook', 'acme/dns-hook').replace('/etc/porchlight/acme-ca.pem', 'tls/wildcard.pem')
    .replace('/var/lib/porchlight/pki/server.crt', 'tls/agents.crt').replace('/var/lib/porchlight/pki/server.key', 'tls/agents.key')
    .replace('# peer: 10.0.0.1:7444', 'peer: 10.0.0.1:7444').replace('/etc/porchlight/cluster.secret', 'cluster.secret')
    .replace('public_proxy_protocol: false', 'public_proxy_protocol: true').replace('redirect_http: false', 'redirect_http: true').replace('require_cert: false', 'require_cert: true')
}
