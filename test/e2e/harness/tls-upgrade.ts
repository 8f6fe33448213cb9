import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { request } from 'node:https'

export interface UpgradeAnswer { status: number; body: string }

export interface TlsUpgradeOptions {
  /** The relay's TLS agents port. */
  port: number
  /** CA that signed the relay's server certificate (pki/ca.crt). */
  caCert: string
  token: string
  /** Client certificate bundle (cert + key PEM), or null for none. */
  bundle: string | null
  /** Source address; a probe from its own address does not draw on the agents' auth-failure budget. */
  localAddress?: string
  /** Request path; default /agent (the dedicated listener accepts any). */
  path?: string
  /** Host header; default 127.0.0.1:PORT (what Node sends). */
  host?: string
}

/** A raw WebSocket upgrade on the TLS agents listener: what the relay answers (101 or a refusal). */
export function upgradeOverTls(opts: TlsUpgradeOptions): Promise<UpgradeAnswer> {
  const pem = opts.bundle === null ? null : readFileSync(opts.bundle, 'utf8')
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      servername: 'localhost',
      port: opts.port,
      path: opts.path ?? '/agent',
      ca: readFileSync(opts.caCert, 'utf8'),
      ...(pem === null ? {} : { cert: pem, key: pem }),
      localAddress: opts.localAddress ?? '127.0.0.3',
      agent: false,
      headers: {
        authorization: `Bearer ${opts.token}`,
        ...(opts.host !== undefined ? { host: opts.host } : {}),
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
      },
    })
    req.setTimeout(5000, () => req.destroy(new Error('no answer to the upgrade within 5 s')))
    req.once('upgrade', (res, socket) => { socket.destroy(); resolve({ status: res.statusCode ?? 101, body: '' }) })
    req.once('response', res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.once('error', reject)
    req.end()
  })
}
